"""Analysis of run directories: exponents recovered from planted power laws, the CLI, and
the committed CPU results."""
import json
from pathlib import Path

import numpy as np
import pytest

from empirical.parity import (ModelConfig, RunConfig, TaskConfig, TrainConfig, analysis,
                              load_run, plots)
from empirical.parity.alpha_sweep import alpha_sweep
from empirical.parity.train import network_table
from quanta import cli
from quanta.commands.parity import EXIT_PAUSED

LN2 = np.log(2)
RESULTS = Path(__file__).resolve().parents[1] / "results" / "parity"


def planted_run(path, *, D=None, alpha=0.4, n_tasks=30, step_limited=()):
    """A run directory whose metrics follow known laws (no training): L(N) ∝ N^-0.4,
    L(S) = 0.6 S^-0.3 for every width, per-subtask convergence at step 50/p_i, and for D runs
    minimum loss 2 D^-0.25 (final loss ∝ D^-0.15) and D^0.7/10 learned subtasks; the sizes in
    ``step_limited`` instead fall off the law, still learning at the last step."""
    widths = [4, 8, 16, 32, 64, 128, 256, 512]
    cfg = RunConfig(TaskConfig(n_tasks=n_tasks, n_bits=12, alpha=alpha),
                    ModelConfig(widths=widths if D is None else [512]),
                    TrainConfig(steps=100_000, batch=10, seeds=[0, 1], D=D))
    run_dir = Path(path)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(cfg.to_json())
    nets = network_table(cfg)
    task = load_run(run_dir).task
    steps = np.unique(np.round(np.geomspace(1, 100_000, 80)).astype(int))
    steps = np.concatenate([[0], steps])
    M, E, T = len(nets), len(steps), n_tasks
    n_params = np.array([task.n_params(n["width"]) for n in nets])
    Ds = np.array([n["D"] for n in nets])
    p = task.frequencies
    conv = 50.0 / p
    test_loss = np.where(steps[None, :, None] >= conv[None, None, :], 1e-3, LN2)
    test_loss = np.broadcast_to(test_loss, (M, E, T)).astype(np.float32).copy()
    s = np.maximum(steps, 1).astype(float)
    if D is None:
        mean = 0.6 * s[None, :] ** -0.3 * np.ones((M, 1))
        # final losses on the N law, meeting the S law at the widest network
        mean[:, -1] = mean[0, -1] * (n_params / n_params.max()) ** -0.4
    else:
        lmin = 2.0 * Ds.astype(float) ** -0.25
        mean = np.tile(lmin[:, None] * 1.5, (1, E))
        mean[:, E // 2] = lmin
        mean[:, -1] = 1.2 * lmin * (Ds / Ds.min()) ** 0.1     # final: slope 0.15, not 0.25
        learned = np.floor(Ds ** 0.7 / 10).astype(int)
        for m in range(M):
            test_loss[m, E // 2] = np.where(np.arange(T) < learned[m], 1e-3, LN2)
            if Ds[m] in step_limited:       # falling to the end, 1.3× above the law there
                mean[m] = np.geomspace(3.0, 1.3, E) * lmin[m]
    metrics = dict(steps=steps, widths=np.array([n["width"] for n in nets]),
                   seeds=np.array([n["seed"] for n in nets]), D=Ds, n_params=n_params,
                   frequencies=p, test_loss=test_loss, test_acc=np.ones_like(test_loss),
                   mean_test_loss=mean, n_evals=np.array(E))
    np.savez(run_dir / "metrics.npz", **metrics)
    return run_dir


def test_planted_online_exponents_are_recovered(tmp_path):
    run = load_run(planted_run(tmp_path / "r"))
    r = analysis.analyze([run])["runs"][0]
    # planted pure power laws: the raw slopes are exact (`exponent` adds ε_K back first)
    assert r["N"]["exponent_raw"] == pytest.approx(0.4, abs=1e-6)
    assert r["N"]["theory_exponent"] == pytest.approx(0.4)
    assert r["S"]["exponent_raw"] == pytest.approx(0.3, abs=1e-6)
    assert r["S"]["theory_exponent"] == pytest.approx(0.4 / 1.4)
    # ε_K by an independent route: theory's tail mass of the Zipf law cut at K (offset 1)
    import theory
    K, a = run.task.n_tasks, run.task.alpha
    eps = LN2 * theory.tail_mass(K, a) * theory.normalization(a) / theory.normalization(a, K)
    assert r["truncation_offset"] == pytest.approx(eps, rel=1e-12)
    for reg in ("N", "S", "convergence"):
        lo, hi = r[reg]["conf_int"]
        assert lo <= r[reg]["exponent"] <= hi
        assert {"exponent", "conf_int", "window", "theory_exponent"} <= set(r[reg])
    # only points inside the stated window were fitted
    w = r["N"]["window"]
    y = np.array(r["N"]["y"])
    assert w["n_points"] == int(((y > 0.05 * LN2) & (y < 0.9 * LN2)).sum())
    # convergence at 50/p_i, seen on a log grid: slope −1 up to the grid's resolution
    assert r["convergence"]["exponent"] == pytest.approx(-1.0, abs=0.05)
    assert r["convergence"]["theory_exponent"] == -1.0


def test_planted_D_exponents_are_recovered(tmp_path):
    run = load_run(planted_run(tmp_path / "r", D=[100, 300, 1000, 3000, 10_000, 30_000]))
    r = analysis.analyze([run])["runs"][0]
    assert r["D"]["exponent_raw"] == pytest.approx(0.25, abs=1e-6)   # the minimum is fitted
    x, y = np.array(r["D"]["x"], float), np.array(r["D"]["y"], float)
    sel = (y > 0.05 * LN2) & (y < 0.9 * LN2)
    slope = np.polyfit(np.log(x[sel]), np.log(y[sel] + r["D"]["truncation_offset"]), 1)[0]
    assert r["D"]["exponent"] == pytest.approx(-slope, rel=1e-9)     # loss + ε_K
    final = np.array(r["D"]["y_final"])
    sel_f = (final > 0.05 * LN2) & (final < 0.9 * LN2)
    raw_final = -np.polyfit(np.log(x[sel_f]), np.log(final[sel_f]), 1)[0]
    assert raw_final == pytest.approx(0.15, abs=1e-6) and r["D"]["exponent_final"] < 0.25
    assert "minimum" in r["D"]["loss"]
    assert r["learned_vs_D"]["exponent"] == pytest.approx(0.7, abs=0.1)
    assert r["learned_vs_D"]["theory_exponent"] == pytest.approx(1 / 1.4)


def test_step_limited_training_sets_are_left_out_of_the_D_fits(tmp_path):
    """A training-set size whose loss is still falling at the last step is limited by the
    steps, not by D: it is named in ``dropped_still_learning`` and not fitted, so the planted
    exponent comes back; with too few data-limited sizes left there is no fit, and a note."""
    Ds = [100, 300, 1000, 3000, 10_000, 30_000]
    r = analysis.analyze([load_run(planted_run(tmp_path / "r", D=Ds,
                                               step_limited=(10_000, 30_000)))])["runs"][0]
    for reg in ("D", "learned_vs_D"):
        assert r[reg]["window"]["dropped_still_learning"] == [10_000, 30_000]
    assert r["D"]["exponent_raw"] == pytest.approx(0.25, abs=1e-6)
    assert r["D"]["window"]["x_max"] == 3000
    assert r["learned_vs_D"]["window"]["x_max"] <= 3000
    few = analysis.analyze([load_run(planted_run(tmp_path / "f", D=Ds,
                                                 step_limited=Ds[2:]))])["runs"][0]
    assert few["D"]["exponent"] is None and "step-limited" in few["D"]["note"]


def test_alpha_at_most_zero_gives_raw_fits_and_says_why(tmp_path):
    r = analysis.analyze([load_run(planted_run(tmp_path / "r", alpha=0.0))])["runs"][0]
    assert r["truncation_offset"] is None and "α = 0" in r["note"]
    assert r["N"]["exponent"] == pytest.approx(0.4, abs=1e-6)      # the planted raw slope
    assert "note: α = 0" in analysis.summary(dict(runs=[r]))


def test_threshold_at_or_above_the_chance_loss_is_refused(tmp_path):
    run = load_run(planted_run(tmp_path / "r"))
    for threshold, unit in ((1.0, "bits"), (LN2, "nats"), (0.0, "nats")):
        with pytest.raises(ValueError, match="chance loss"):
            analysis.analyze_run(run, threshold=threshold, unit=unit)


def test_alpha_sweep_and_all_figures(tmp_path):
    runs = [load_run(planted_run(tmp_path / f"a{a}", alpha=a)) for a in (0.2, 0.4)]
    runs.append(load_run(planted_run(tmp_path / "d", D=[100, 1000, 10_000, 100_000])))
    result = analysis.analyze(runs)
    assert result["alpha_sweep"]["alpha"] == [0.2, 0.4]
    assert result["alpha_sweep"]["theory_N"] == [0.2, 0.4]
    import matplotlib.pyplot as plt
    figs = list(plots.figures(runs, result))
    names = [n for n, _ in figs]
    try:
        assert "exponents_vs_alpha" in names and "loss_vs_D_d" in names
        assert any(n.startswith("emergence_width") for n in names)
        for _, fig in figs:
            assert fig.axes and fig.axes[0].has_data()
    finally:
        for _, fig in figs:
            plt.close(fig)


def test_threshold_in_bits_is_converted(tmp_path):
    run = load_run(planted_run(tmp_path / "r"))
    a = analysis.analyze_run(run, threshold=0.1, unit="bits")
    assert a["convergence"]["unit"] == "bits"
    with pytest.raises(ValueError, match="unit"):
        analysis.analyze_run(run, unit="decibels")


def test_cli_train_then_analyze(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["parity", "train", "--out", str(out), "--n-tasks", "6", "--n-bits", "8",
                     "--widths", "4", "16", "--steps", "8", "--batch", "64", "--eval-points", "4",
                     "--checkpoints", "2", "--test-per-task", "8", "--device", "cpu", "--quiet"])
    assert code == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["widths"] == [4, 16] and cfg["task"]["n_tasks"] == 6
    assert cli.main(["parity", "train", "--out", str(out), "--resume"]) == 0
    paused = tmp_path / "paused"
    args = ["parity", "train", "--out", str(paused), "--n-tasks", "6", "--n-bits", "8",
            "--widths", "4", "--steps", "3", "--batch", "64", "--eval-points", "3",
            "--checkpoints", "2", "--test-per-task", "8", "--device", "cpu", "--quiet",
            "--time-limit", "0"]
    assert cli.main(args) == EXIT_PAUSED
    assert cli.main(args + ["--resume"]) == EXIT_PAUSED
    assert cli.main(args + ["--resume"]) == 0
    assert "done" in capsys.readouterr().out
    capsys.readouterr()
    assert cli.main(["parity", "analyze", str(out), "--json", "-"]) == 0
    printed = capsys.readouterr()
    data = json.loads(printed.out)
    assert {"N", "S", "convergence"} <= set(data["runs"][0])
    assert "exponent" in printed.err or "no fit" in printed.err  # the summary, on stderr


def test_cli_resume_refuses_flags_that_contradict_the_saved_run(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["parity", "train", "--out", out, "--n-tasks", "6", "--n-bits", "8", "--widths", "4",
            "--steps", "4", "--batch", "32", "--eval-points", "3", "--checkpoints", "2",
            "--test-per-task", "8", "--device", "cpu", "--quiet"]
    assert cli.main(base) == 0
    # the same flags, or none, resume; a changed one is an error that names it
    assert cli.main(base + ["--resume"]) == 0
    assert cli.main(["parity", "train", "--out", out, "--resume"]) == 0
    capsys.readouterr()
    assert cli.main(base + ["--resume", "--steps", "8"]) == 2
    err = capsys.readouterr().err
    assert "train.steps = 8 (saved: 4)" in err and len(err.strip().splitlines()) == 1


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["parity", "analyze", str(tmp_path / "missing")]) == 2
    assert "error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:          # a usage error, from argparse
        cli.main(["parity", "train", "--out", str(tmp_path / "x"), "--k", "0", "--steps", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "k" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not (RESULTS / "online_alpha0.4" / "metrics.npz").exists(),
                    reason="committed CPU results not present")
def test_committed_results_analyze(tmp_path):
    runs = sorted(p for p in RESULTS.iterdir() if (p / "config.json").exists())
    result = analysis.analyze([load_run(p) for p in runs])
    by_name = {Path(r["run"]).name: r for r in result["runs"]}
    r = by_name["online_alpha0.4"]
    # these CPU runs are step-limited: every width in the window is still learning at the
    # end, so L(N) has no capacity-limited points to fit, and the analysis says so
    assert r["complete"] and r["N"]["exponent"] is None
    assert r["N"]["window"]["dropped_still_learning"] and "step-limited" in r["N"]["note"]
    final = np.array(r["N"]["y"])
    assert final[-1] < final[0], "the widest network must reach a lower loss than the narrowest"
    assert r["convergence"]["exponent"] < 0, "frequent subtasks must converge first"
    assert "D" in by_name["D_alpha0.4"] and "alpha_sweep" in result
    # the 16-subtask run trained 60 000 steps: its narrow widths stop learning (capacity-
    # limited), so L(N) has a fit there, made only of widths that were no longer learning
    n = by_name["N_alpha0.4"]["N"]
    assert n["exponent"] is not None and n["window"]["n_points"] >= 3
    fitted = [w for w, x in zip(n["widths"], n["x"])
              if n["window"]["x_min"] <= x <= n["window"]["x_max"]]
    assert not set(fitted) & set(n["window"]["dropped_still_learning"])
    # the α sweep is the group with the most α (the five 16-subtask runs), and its L(N)
    # exponents rise with α, as the model's α_N = α does
    sweep = result["alpha_sweep"]
    assert all(Path(p).name.startswith("N_alpha") for p in sweep["run"])
    assert len(sweep["alpha"]) >= 5 and np.all(np.diff(sweep["N"]) > 0)
    # the D sweep: the minimum loss falls with D, and the sizes left out are still learning
    d = by_name["D_alpha0.4"]["D"]
    assert d["exponent"] is not None and d["exponent"] > 0
    gone = d["window"]["dropped_still_learning"]
    assert all(x > d["window"]["x_max"] for x in gone)
    run = load_run(RESULTS / "online_alpha0.4")
    nets = run.networks()
    assert len(nets) == len(run.config.model.widths)


def model_run(path, *, alpha, steps=200_000, seeds=(0,), seed_delay=None, widths=None):
    """A run directory that follows the quantization model exactly, at the paper's size:
    500 subtasks, widths 9…500 with one quantum per unit of width, subtask k learned (loss
    ln 2 → 0) at step 100/p_k (a fixed number of its samples at batch 20 000), if it fits."""
    widths = widths or sorted({int(round(v)) for v in np.geomspace(9, 500, 30)})
    cfg = RunConfig(TaskConfig(n_tasks=500, n_bits=100, k=3, alpha=alpha),
                    ModelConfig(widths=widths),
                    TrainConfig(steps=steps, batch=20_000, seeds=list(seeds), eval_points=100))
    d = Path(path)
    d.mkdir(parents=True)
    (d / "config.json").write_text(cfg.to_json())
    nets = network_table(cfg)
    p = load_run(d).task.frequencies
    grid = np.array(sorted({0, *np.unique(np.round(np.geomspace(1, steps, 100)).astype(int))}))
    loss = np.full((len(nets), grid.size, 500), LN2, np.float32)
    for m, n in enumerate(nets):
        conv = 100.0 / p * (1.0 if seed_delay is None else seed_delay[n["seed"]])
        conv[n["width"]:] = np.inf
        loss[m] = np.where(grid[:, None] >= conv[None, :], 0.0, LN2)
    np.savez(d / "metrics.npz", steps=grid, widths=np.array([n["width"] for n in nets]),
             seeds=np.array([n["seed"] for n in nets]), D=np.zeros(len(nets), int),
             n_params=np.array([603 * n["width"] + 2 for n in nets]), frequencies=p,
             test_loss=loss, test_acc=np.ones_like(loss), mean_test_loss=loss.astype(float) @ p,
             n_evals=np.array(grid.size))
    return d


@pytest.mark.parametrize("alpha", [0.1, 0.4])
def test_model_exact_runs_give_the_model_exponents(tmp_path, alpha):
    """On data that follow the model exactly, with 500 subtasks: L(N) and L(S) measured
    with ε_K added back are within 0.03 of α and α/(α+1), where the raw slopes are far off
    (the Zipf law cut at 500 steepens the curve near the cutoff); the widths still learning
    at 200 000 steps are left out of L(N) rather than fitted as a plateau."""
    r = analysis.analyze([load_run(model_run(tmp_path / "m", alpha=alpha))])["runs"][0]
    assert abs(r["N"]["exponent"] - alpha) < 0.03, r["N"]
    assert abs(r["S"]["exponent"] - alpha / (alpha + 1)) < 0.03, r["S"]
    # convergence at 100/p_k: slope −1, so the S exponent it implies is the model's
    assert abs(r["S"]["exponent_from_convergence"] - alpha / (alpha + 1)) < 0.02
    assert abs(r["S"]["exponent_raw"] - alpha / (alpha + 1)) > 0.05
    dropped = r["N"]["window"]["dropped_still_learning"]
    assert dropped and min(dropped) > max(w for w, y in zip(r["N"]["widths"], r["N"]["y"])
                                          if w not in dropped and y > 0.05 * LN2)


def test_a_slow_seed_does_not_set_the_convergence_step(tmp_path):
    one = analysis.analyze([load_run(model_run(tmp_path / "a", alpha=0.4, steps=20_000,
                                               widths=[500]))])["runs"][0]
    two = analysis.analyze([load_run(model_run(tmp_path / "b", alpha=0.4, steps=20_000,
                                               widths=[500], seeds=(0, 1, 2),
                                               seed_delay={0: 0.7, 1: 1.0, 2: 1.5}))])
    two = two["runs"][0]
    assert two["convergence"]["seeds"] == 3
    assert two["convergence"]["n_converged"] == one["convergence"]["n_converged"]
    assert two["convergence"]["steps"][:5] == one["convergence"]["steps"][:5]


def test_alpha_sweep_groups_runs_by_configuration(tmp_path):
    runs = [load_run(planted_run(tmp_path / f"a{a}", alpha=a)) for a in (0.2, 0.4)]
    runs.append(load_run(planted_run(tmp_path / "other", alpha=0.8, n_tasks=20)))
    result = analysis.analyze(runs)
    sweep = result["alpha_sweep"]
    assert sweep["alpha"] == [0.2, 0.4] and len(result["alpha_sweeps"]) == 1
    assert sweep["config"]["n_tasks"] == 30 and [Path(r).name for r in sweep["run"]] == ["a0.2", "a0.4"]
    assert len(sweep["convergence"]) == 2
    # the columns and the rows are one measurement: the rows are what alpha_sweep measures
    # on these runs alone (seed means, our method), the columns the same exponents
    alone = alpha_sweep(runs[:2], method="quanta", per_seed=False).rows()
    assert sweep["rows"] == alone
    by_regime = {reg: [r["exponent"] for r in sweep["rows"] if r["regime"] == reg]
                 for reg in ("N", "S")}
    assert by_regime == {reg: [e for e in sweep[reg] if e is not None] for reg in ("N", "S")}
    assert sweep["coverage"]["quanta:S"]["of"] == len(by_regime["S"])


def test_emergence_maps_draw_the_model_boundary(tmp_path):
    import matplotlib.pyplot as plt
    run = load_run(model_run(tmp_path / "m", alpha=0.4, steps=20_000, widths=[50, 500]))
    figs = dict(plots.figures([run], analysis.analyze([run])))
    try:
        ax = figs["emergence_steps"].axes[0]
        (line,) = [ln for ln in ax.get_lines() if "model" in ln.get_label()]
        rows = line.get_ydata()[:-1]
        # the model-exact run learns exactly the predicted subtasks: the boundary sits at the
        # number of subtasks whose loss is 0 in each column
        learned = (run.metrics["test_loss"][1] < 0.1).sum(1)
        assert np.all(np.abs(rows - learned) <= 1)
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_width_map_draws_the_capacity_boundary(tmp_path):
    """A model-exact run whose width w holds the w most frequent subtasks (all learned by
    200 000 steps): the boundary, n ∝ N with the constant set by the data, sits within one
    subtask of the learned count in every column."""
    import matplotlib.pyplot as plt
    run = load_run(model_run(tmp_path / "m", alpha=0.4, widths=[20, 40, 80]))
    figs = dict(plots.figures([run], analysis.analyze([run])))
    try:
        ax = figs["emergence_width"].axes[0]
        (line,) = [ln for ln in ax.get_lines() if "model" in ln.get_label()]
        np.testing.assert_allclose(line.get_ydata()[:-1], [20, 40, 80], atol=1)
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_alpha_sweep_plot_shows_convergence_slopes_against_one():
    import matplotlib.pyplot as plt
    sweep = dict(alpha=[0.2, 0.4], N=[0.25, None], N_conf_int=[[0.2, 0.3], None],
                 S=[0.15, 0.3], S_conf_int=[[0.1, 0.2], [0.25, 0.35]],
                 convergence=[-0.9, -1.1], convergence_conf_int=[[-1.0, -0.8], [-1.2, -1.0]])
    ax = plots.plot_exponents_vs_alpha(sweep)
    try:
        labels = [c.get_label() for c in ax.containers]
        conv = ax.containers[labels.index("observed −slope of convergence step")]
        np.testing.assert_allclose(conv.lines[0].get_ydata(), [0.9, 1.1])
        (theory,) = [ln for ln in ax.get_lines() if "convergence = 1" in ln.get_label()]
        assert np.all(theory.get_ydata() == 1.0)
        # error bars span the interval of −slope: [0.8, 1.0] and [1.0, 1.2]
        segs = conv.lines[2][0].get_segments()
        np.testing.assert_allclose([sorted(sg[:, 1]) for sg in segs], [[0.8, 1.0], [1.0, 1.2]])
    finally:
        plt.close(ax.figure)


def test_fit_lines_are_drawn_in_the_finite_K_form(tmp_path):
    """The loss fits are made on loss + ε_K: the drawn fit line is A·x^-e − ε_K."""
    import matplotlib.pyplot as plt
    run = load_run(model_run(tmp_path / "m", alpha=0.4, steps=20_000, widths=[500]))
    r = analysis.analyze([run])["runs"][0]
    f = r["S"]
    ax = plots.plot_loss_vs_S(run.metrics["steps"], run.metrics["mean_test_loss"], [500], f)
    try:
        (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("fit")]
        x, y = line.get_xdata(), line.get_ydata()
        np.testing.assert_allclose(y, f["amplitude"] * x ** -f["exponent"]
                                   - f["truncation_offset"], rtol=1e-12)
    finally:
        plt.close(ax.figure)


@pytest.mark.skipif(not (RESULTS / "N_alpha0.4" / "metrics.npz").exists(),
                    reason="committed CPU results not present")
def test_committed_figures_have_no_overlapping_tick_labels():
    """Every figure of the committed runs, drawn: no two tick labels of an axis overlap
    (log axes spanning one to two decades label minor ticks over the major ones)."""
    import matplotlib.pyplot as plt
    runs = [load_run(p) for p in sorted(RESULTS.iterdir()) if (p / "config.json").exists()]
    for name, fig in plots.figures(runs, analysis.analyze(runs)):
        try:
            fig.canvas.draw()
            renderer = fig.canvas.get_renderer()
            for ax in fig.axes:
                for axis in (ax.xaxis, ax.yaxis):
                    boxes = [t.get_window_extent(renderer)
                             for t in axis.get_majorticklabels() + axis.get_minorticklabels()
                             if t.get_visible() and t.get_text()]
                    for i, a in enumerate(boxes):
                        for b in boxes[i + 1:]:
                            assert not a.overlaps(b), f"{name}: tick labels overlap"
        finally:
            plt.close(fig)
