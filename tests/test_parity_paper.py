"""The paper's method (``analyze(..., method="paper")``) on planted runs whose metrics are
written from formulas with known exponents; the result protocol of both methods; the
analysis's invariance to the order of the networks; the CLI's ``--method``."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats

from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, analysis, load_run
from empirical.parity.train import network_table
from quanta import cli

from strategies import seeds

LN2 = np.log(2)

#: the planted laws (bits): final loss 2·N^-A_N over every width, the widest width's loss
#: 3·S^-A_S inside the paper's step window (flat outside it), subtask i converged at
#: step C·p_i^-GAMMA, minimum loss 5·D^-A_D below the 0.95-bit start (1 bit above it)
A_N, A_S, GAMMA, A_D = 0.37, 0.31, 0.8, 0.27
C_CONV = 2000.0


def _write(path, cfg, nets, steps, test_loss, mean_loss, task):
    d = Path(path)
    (d / "config.json").write_text(cfg.to_json())
    np.savez(d / "metrics.npz", steps=steps, widths=np.array([n["width"] for n in nets]),
             seeds=np.array([n["seed"] for n in nets]), D=np.array([n["D"] for n in nets]),
             n_params=np.array([task.n_params(n["width"]) for n in nets]),
             frequencies=task.frequencies, test_loss=test_loss.astype(np.float32),
             test_acc=np.ones_like(test_loss, dtype=np.float32), mean_test_loss=mean_loss,
             n_evals=np.array(len(steps)))
    return d


def _config(D=None, widths=(4, 8, 16, 32, 64, 128, 256, 512), seeds_=(0,), n_tasks=40):
    return RunConfig(TaskConfig(n_tasks=n_tasks, n_bits=12, alpha=0.4),
                     ModelConfig(widths=list(widths)),
                     TrainConfig(steps=400_000, batch=10, seeds=list(seeds_), D=D))


def planted_online(path, *, noise=0.0, seed=0, plateau=True, seeds_=(0,)):
    """An online run following the planted N, S and convergence laws. ``noise``: lognormal
    scatter (SD of log) on the final losses. ``plateau``: before converging, each subtask
    rests at 0.12 bits (below 0.1 nats, above 0.1 bits) from step (C p^-GAMMA)^0.8 on, so a
    threshold read in nats would find other steps (slope −0.64)."""
    path = Path(path)
    path.mkdir(parents=True)
    cfg = _config(seeds_=seeds_)
    (path / "config.json").write_text(cfg.to_json())
    task = load_run(path).task
    nets = network_table(cfg)
    p = task.frequencies
    conv = np.round(C_CONV * p ** -GAMMA)
    early = np.round(conv ** 0.8)
    grid = np.unique(np.round(np.geomspace(1, 400_000, 120)))
    steps = np.unique(np.concatenate([[0], grid, conv, early])).astype(int)
    bits = np.where(steps[:, None] >= conv[None, :], 0.01,
                    np.where(plateau & (steps[:, None] >= early[None, :]), 0.12, 1.0))
    test_loss = np.broadcast_to(bits * LN2, (len(nets), len(steps), len(p)))
    s = np.maximum(steps, 1).astype(float)
    inside = np.clip(s, 500, 14_999)               # flat outside 500 <= S < 15 000
    curve = 3.0 * inside ** -A_S
    n_params = np.array([task.n_params(n["width"]) for n in nets], float)
    rng = np.random.default_rng(seed)
    final = 2.0 * n_params ** -A_N * np.exp(noise * rng.standard_normal(len(nets)))
    mean_bits = np.tile(curve, (len(nets), 1))
    mean_bits[:, -1] = final
    return _write(path, cfg, nets, steps, test_loss, mean_bits * LN2, task)


def planted_D(path, Ds=(100, 300, 1000, 3000, 10_000, 30_000, 100_000, 300_000)):
    """A finite-D run (width 512): minimum loss over evaluations min(1, 5·D^-A_D) bits,
    reached mid-training; the sizes whose minimum is not below 0.95 bits sit at 1 bit."""
    path = Path(path)
    path.mkdir(parents=True)
    cfg = _config(D=list(Ds), widths=(512,))
    (path / "config.json").write_text(cfg.to_json())
    task = load_run(path).task
    nets = network_table(cfg)
    steps = np.array([0, 10, 100, 1000, 10_000, 100_000, 400_000])
    lmin = np.minimum(1.0, 5.0 * np.array([n["D"] for n in nets], float) ** -A_D)
    mean_bits = np.tile(1.3 * lmin[:, None], (1, len(steps)))
    mean_bits[:, 4] = lmin
    test_loss = np.full((len(nets), len(steps), task.n_tasks), LN2)
    return _write(path, cfg, nets, steps, test_loss, mean_bits * LN2, task)


def test_paper_method_recovers_the_planted_exponents(tmp_path):
    r = analysis.analyze([load_run(planted_online(tmp_path / "r"))], method="paper").runs[0]
    assert r.method == "paper" and r["loss_unit"] == "bits"
    assert r["N"]["exponent"] == pytest.approx(A_N, abs=1e-9)
    assert r["N"]["window"]["n_points"] == 8            # every width, no window
    np.testing.assert_allclose(r["N"]["y"], 2.0 * np.array(r["N"]["x"]) ** -A_N, rtol=1e-6)
    # the step window is 500 <= S < 15 000: the planted law holds exactly there only
    assert r["S"]["exponent"] == pytest.approx(A_S, abs=1e-9)
    assert min(r["S"]["x"]) >= 500 and max(r["S"]["x"]) < 15_000
    # convergence at the first evaluation below 0.1 bits: the step C p^-γ, not the plateau
    assert r["convergence"]["exponent"] == pytest.approx(-GAMMA, abs=2e-3)
    assert r["convergence"]["n_converged"] == 40
    for reg in ("N", "S", "convergence"):
        assert r[reg]["method"] == "paper" and "bootstrap" in r[reg]["interval"]
    assert r["N"]["theory_exponent"] == 0.4 and r["S"]["theory_exponent"] == pytest.approx(0.4 / 1.4)


def test_paper_method_reads_D_from_the_first_size_below_095_bits(tmp_path):
    r = analysis.analyze([load_run(planted_D(tmp_path / "d"))], method="paper").runs[0]
    f = r["D"]
    assert f["exponent"] == pytest.approx(A_D, abs=1e-9)
    first = min(D for D in (100, 300, 1000, 3000) if 5.0 * D ** -A_D < 0.95)
    assert min(f["x"]) == first and "D" not in r.get("S", {})
    assert f["window"]["resampled"] == "training-set sizes"


def test_the_step_window_and_width_are_options(tmp_path):
    run = load_run(planted_online(tmp_path / "r"))
    wide = analysis.analyze([run], method="paper", step_window=(100, 100_000)).runs[0]
    # outside the paper's window the planted curve is flat: a wider window flattens the fit
    assert wide["S"]["exponent"] < A_S - 0.05
    narrow = analysis.paper_run(run, width=64)
    assert narrow["S"]["window"]["width"] == 64
    with pytest.raises(ValueError, match="width 65"):
        analysis.paper_run(run, width=65)
    with pytest.raises(ValueError, match="step_window"):
        analysis.paper_run(run, step_window=(10, 5))
    with pytest.raises(ValueError, match="unknown options"):
        analysis.analyze([run], method="paper", windw=(1, 2))


def test_paper_intervals_are_the_percentile_bootstrap_over_widths(tmp_path):
    """With scatter on the final losses, the interval of α_N is the percentile bootstrap
    over widths: scipy.stats.bootstrap of the same OLS slope (paired resampling of the
    widths) agrees within Monte Carlo error, and the interval holds the estimate."""
    run = load_run(planted_online(tmp_path / "r", noise=0.05, seed=3))
    r = analysis.analyze([run], method="paper", bootstrap=4000).runs[0]
    lo, hi = r["N"]["conf_int"]
    assert lo < r["N"]["exponent"] < hi
    x, y = np.log(np.array(r["N"]["x"])), np.log(np.array(r["N"]["y"]))

    def slope(i):
        i = np.asarray(i, int)
        return -np.polyfit(x[i], y[i], 1)[0] if np.unique(x[i]).size > 1 else np.nan

    ref = stats.bootstrap((np.arange(len(x)),), slope, vectorized=False, n_resamples=4000,
                          method="percentile", random_state=np.random.default_rng(1))
    width = hi - lo
    assert abs(lo - ref.confidence_interval.low) < 0.15 * width
    assert abs(hi - ref.confidence_interval.high) < 0.15 * width
    assert r["N"]["exponent"] == pytest.approx(-np.polyfit(x, y, 1)[0], rel=1e-12)


def test_result_protocol_for_both_methods(tmp_path):
    run = load_run(planted_online(tmp_path / "r", noise=0.05))
    for method in ("quanta", "paper"):
        res = analysis.analyze([run], method=method)
        r = res.runs[0]
        assert set(r.params) == {"N", "S", "convergence"}
        table = r.conf_int(alpha=0.05)
        assert list(table.columns) == ["lower", "upper"] and set(table.index) == set(r.params)
        narrow = r.conf_int(alpha=0.5)
        assert np.all(narrow["upper"] - narrow["lower"] <= table["upper"] - table["lower"] + 1e-12)
        for reg, v in r.params.items():
            assert table.loc[reg, "lower"] <= v <= table.loc[reg, "upper"]
            # the JSON's 95 % interval is the table's
            assert r[reg]["conf_int"] == pytest.approx(list(table.loc[reg]), rel=1e-12)
        assert res.params == {f"r/{k}": v for k, v in r.params.items()}
        data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
        assert data["method"] == method and data["runs"][0]["method"] == method
        assert all(data["runs"][0][reg]["method"] == method for reg in r.params)
        assert f"{method} method" in res.summary()
        ax = r.plot("S")
        assert ax.has_data()
        import matplotlib.pyplot as plt
        plt.close(ax.figure)


def test_both_methods_side_by_side(tmp_path):
    run = load_run(planted_online(tmp_path / "r"))
    both = analysis.analyze([run], method="both")
    rows = {row["regime"]: row for row in both.rows()}
    assert set(rows) == {"N", "S", "convergence"}
    assert rows["N"]["paper"] == pytest.approx(A_N, abs=1e-9)
    assert rows["N"]["quanta"] == both.quanta.runs[0]["N"]["exponent"]
    assert rows["S"]["theory"] == pytest.approx(0.4 / 1.4)
    d = both.to_dict()
    assert d["method"] == "both" and d["paper"]["method"] == "paper"
    assert d["quanta"]["method"] == "quanta" and len(d["table"]) == 3
    assert "paper:r/N" in both.params and "quanta:r/N" in both.conf_int().index
    assert both.table().shape[0] == 3
    import matplotlib.pyplot as plt
    plt.close(both.plot().figure)


@settings(max_examples=8)
@given(seed=seeds)
def test_analysis_is_invariant_to_the_order_of_the_networks(tmp_path_factory, seed):
    """Permuting the networks of a planted run (their rows in metrics.npz and the widths in
    config.json) changes no number of either method, bootstrap intervals included."""
    rng = np.random.default_rng(seed)
    base = tmp_path_factory.mktemp("order")
    ref = planted_online(base / "ref", noise=0.05, seed=seed % 1000, seeds_=(0, 1))
    perm_dir = base / "perm"
    perm_dir.mkdir()
    cfg = json.loads((ref / "config.json").read_text())
    cfg["model"]["widths"] = list(rng.permutation(cfg["model"]["widths"]).tolist())
    (perm_dir / "config.json").write_text(json.dumps(cfg))
    with np.load(ref / "metrics.npz") as z:
        m = {k: z[k] for k in z.files}
    order = rng.permutation(len(m["widths"]))
    for key in ("widths", "seeds", "D", "n_params", "test_loss", "test_acc", "mean_test_loss"):
        m[key] = m[key][order]
    np.savez(perm_dir / "metrics.npz", **m)
    a = analysis.analyze([load_run(ref)], method="both")
    b = analysis.analyze([load_run(perm_dir)], method="both")
    pa, pb = a.params, b.params
    assert {k.replace("ref", "x") for k in pa} == {k.replace("perm", "x") for k in pb}
    for k, v in pa.items():
        assert pb[k.replace("ref", "perm")] == pytest.approx(v, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(a.conf_int().to_numpy(), b.conf_int().to_numpy(),
                               rtol=1e-9, atol=1e-12)


def test_cli_method_paper_and_both(tmp_path, capsys):
    run = planted_online(tmp_path / "r")
    assert cli.main(["parity", "analyze", str(run), "--method", "paper", "--json", "-",
                     "--step-window", "500", "15000", "--bootstrap", "200"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    r = data["runs"][0]
    assert data["method"] == "paper" and data["bootstrap"] == 200
    assert r["S"]["exponent"] == pytest.approx(A_S, abs=1e-9)
    assert all(len(r[reg]["conf_int"]) == 2 for reg in ("N", "S", "convergence"))
    assert "paper method" in out.err
    plots = tmp_path / "plots"
    assert cli.main(["parity", "analyze", str(run), "--method", "both", "--json",
                     str(tmp_path / "b.json"), "--plot-dir", str(plots)]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["table"][0]["regime"] == "N"
    names = {p.name for p in plots.iterdir()}
    assert {"loss_vs_N.png", "paper_S.png", "exponents_by_method.png"} <= names
    with pytest.raises(SystemExit) as stop:                   # argparse's usage error
        cli.main(["parity", "analyze", str(run), "--method", "paper", "--bootstrap", "0"])
    assert stop.value.code == 2
    assert "bootstrap" in capsys.readouterr().err
