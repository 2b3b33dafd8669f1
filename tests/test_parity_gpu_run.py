"""The shipped GPU runs of the paper's Figure 2 (results/parity/gpu_fig2_NS, gpu_fig2_D),
the partial fp32 run beside the first (gpu_fig2_NS_fp32_partial) and the QDG results on its
networks (results/qdg/gpu_fig2_NS): what they are, that the shipped float16 checkpoint
reproduces the losses recorded on the GPU, that the paper method's numbers on them are those
of a direct computation, that the guide states what the analysis computes, that the partial
run is read as one, and that the QDG JSON agrees with its stored labels."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from empirical.parity import analysis, load_run

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "results" / "parity" / "gpu_fig2_NS"
RUN_D = ROOT / "results" / "parity" / "gpu_fig2_D"
FP32 = ROOT / "results" / "parity" / "gpu_fig2_NS_fp32_partial"
QDG = ROOT / "results" / "qdg" / "gpu_fig2_NS"
LN2 = np.log(2)

pytestmark = pytest.mark.skipif(not (RUN / "metrics.npz").exists(),
                                reason="the shipped GPU run is not in this checkout")


@pytest.fixture(scope="module")
def run():
    return load_run(RUN)


def test_the_shipped_run_is_the_papers_figure_2_configuration(run):
    c = run.config
    assert (c.task.n_tasks, c.task.n_bits, c.task.k, c.task.alpha) == (500, 100, 3, 0.4)
    assert len(c.model.widths) == 30 and (min(c.model.widths), max(c.model.widths)) == (9, 500)
    assert (c.train.steps, c.train.batch, c.train.lr) == (200_000, 20_000, 1e-3)
    assert c.train.precision == "bf16" and c.train.device == "cuda"
    assert analysis.finished(run.metrics)
    assert run.metrics["wall_time"][-1] == pytest.approx(526.0, abs=1.0)   # the provenance
    note = (RUN / "PROVENANCE.md").read_text()
    for fact in ("H200", "ec4942a", "--precision bf16", "526 s", "float16"):
        assert fact in note, fact
    assert sum(p.stat().st_size for p in RUN.rglob("*") if p.is_file()) < 7e6


def test_float16_checkpoint_reproduces_the_losses_recorded_on_the_gpu(run):
    """The shipped checkpoint (float16), evaluated here in float32 on the run's own test set,
    gives the per-subtask losses the GPU recorded at step 200 000 (in bf16 autocast): within
    0.05 nats for every one of the first 40 subtasks, 0.005 in the median (measured: 0.03
    and 0.0002 at width 500). A task rebuilt with other bit subsets would be off by ~ln 2."""
    T = 40
    sub, bits = run.task.test_set(run.config.train.test_per_task, run.config.train.test_seed)
    n = T * run.config.train.test_per_task
    x, y = run.task.encode(sub[:n], bits[:n]), run.task.label(sub[:n], bits[:n])
    for index in (29, 0):                         # widths 500 and 9
        info, mlp = run.network(index)
        with torch.no_grad():
            loss = F.cross_entropy(mlp(x), y, reduction="none").view(T, -1).mean(1).numpy()
        diff = np.abs(loss - run.metrics["test_loss"][index, -1, :T])
        assert diff.max() < 0.05 and np.median(diff) < 0.005, (info["width"], diff.max())


def test_paper_method_on_the_run_is_the_direct_computation(run):
    """The paper's numbers computed here directly from metrics.npz with numpy: OLS of log
    final loss (bits) on log N over all widths, of the widest width's loss over
    500 <= step < 15 000, and of each subtask's first step below 0.1 bits on log frequency."""
    r = analysis.analyze([run], method="paper", bootstrap=200).runs[0]
    m = run.metrics
    bits = m["mean_test_loss"] / LN2
    slope_N = np.polyfit(np.log(m["n_params"]), np.log(bits[:, -1]), 1)[0]
    assert r["N"]["exponent"] == pytest.approx(-slope_N, rel=1e-9)
    steps = m["steps"]
    sel = (steps >= 500) & (steps < 15_000)
    widest = int(np.argmax(m["widths"]))
    slope_S = np.polyfit(np.log(steps[sel]), np.log(bits[widest, sel]), 1)[0]
    assert r["S"]["exponent"] == pytest.approx(-slope_S, rel=1e-9)
    conv = {}
    for i in range(run.task.n_tasks):
        for step, loss in zip(steps, m["test_loss"][widest, :, i]):
            if loss / LN2 < 0.1:
                conv[i] = step
                break
    conv = {i: s for i, s in conv.items() if s > 0}
    freq = run.task.frequencies[list(conv)]
    slope_c = np.polyfit(np.log(freq), np.log(list(conv.values())), 1)[0]
    assert r["convergence"]["exponent"] == pytest.approx(slope_c, rel=1e-9)
    assert r["convergence"]["window"]["n_points"] == len(conv)


def _cells(result) -> list[tuple[str, str, str]]:
    """(regime, method, "0.313 [0.297, 0.330]") of every exponent of a `--method both`
    analysis, written as the guide writes numbers."""
    out = []
    for row in result.rows():
        for method in ("quanta", "paper"):
            if row[method] is not None:
                v, (lo, hi) = row[method], row[f"{method}_conf_int"]
                out.append((row["regime"], method,
                            f"{v:.3f} [{lo:.3f}, {hi:.3f}]".replace("-", "−")))
    return out


@pytest.mark.parametrize("path", [RUN, RUN_D], ids=["NS", "D"])
def test_the_guides_table_is_what_the_analysis_prints(path):
    """docs/parity.md's table of each run holds the numbers `--method both` computes."""
    if not (path / "metrics.npz").exists():
        pytest.skip(f"{path.name} is not in this checkout")
    text = (ROOT / "docs" / "parity.md").read_text()
    for regime, method, cell in _cells(analysis.analyze([load_run(path)], method="both")):
        assert cell in text, (path.name, regime, method, cell)


@pytest.mark.skipif(not (QDG / "qdg.json").exists(), reason="QDG results not present")
def test_qdg_results_agree_with_their_stored_labels():
    """Each network's ARI and NMI in qdg.json, recomputed from labels.npz with scikit-learn,
    and its calibrated α from the raw one by the calibration's formula (α̂ − c0)/c1."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    res = json.loads((QDG / "qdg.json").read_text())
    assert [r["width"] for r in res["networks"]] == [287, 330, 379, 435, 500]
    with np.load(QDG / "labels.npz") as z:
        labels = {k: z[k] for k in z.files}
    for r in res["networks"]:
        c = r["checkpoints"][-1]
        true = labels[f"net{r['network']}_step{c['step']}_subtask"]
        assert true.size == c["n_kept"] and set(true) <= set(r["sampled_subtasks"])
        for k in c["ks"]:
            found = labels[f"net{r['network']}_step{c['step']}_k{k}"]
            assert adjusted_rand_score(true, found) == pytest.approx(c["ari_by_k"][str(k)])
            assert normalized_mutual_info_score(true, found) == \
                pytest.approx(c["nmi_by_k"][str(k)])
        cal = c["calibrated"]
        p = cal["calibration"]
        assert cal["alpha_calibrated"] == pytest.approx((cal["alpha_raw"] - p["c0"]) / p["c1"])
        assert cal["ci_calibrated"] == pytest.approx(sorted((v - p["c0"]) / p["c1"]
                                                            for v in cal["ci_raw"]))
    assert re.search(r"quanta qdg parity results/parity/gpu_fig2_NS", (QDG / "COMMANDS.md")
                     .read_text())


def test_demo_draws_the_gpu_figures_from_the_shipped_files(run, tmp_path, monkeypatch):
    """`make demo`'s parity part: the GPU run's L(N), L(S), convergence and emergence
    figures and both methods' exponents, from the shipped files (no CUDA used)."""
    from quanta.commands.parity import _demo_gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    written = _demo_gpu(run, tmp_path)
    names = {p.name for p in written}
    for fig in ("loss_vs_N", "loss_vs_S", "convergence_vs_frequency", "emergence_width",
                "emergence_steps", "exponents_by_method"):
        assert f"gpu_fig2_NS_{fig}.png" in names and (tmp_path / f"gpu_fig2_NS_{fig}.png").stat().st_size
    data = json.loads((tmp_path / "gpu_fig2_NS.json").read_text())
    assert data["method"] == "both" and {r["regime"] for r in data["table"]} == \
        {"N", "S", "convergence"}


# ------------------------------------------------------------------ the D sweep
needs_D = pytest.mark.skipif(not (RUN_D / "metrics.npz").exists(),
                             reason="the shipped D run is not in this checkout")


@pytest.fixture(scope="module")
def run_D():
    return load_run(RUN_D)


@needs_D
def test_the_D_run_is_the_papers_figure_2_data_configuration(run_D):
    c = run_D.config
    assert (c.task.n_tasks, c.task.n_bits, c.task.k, c.task.alpha) == (500, 100, 3, 0.4)
    assert c.model.widths == [500] and len(c.train.D) == 30
    assert (min(c.train.D), max(c.train.D)) == (10_000, 5_000_000)
    assert (c.train.steps, c.train.batch, c.train.lr) == (20_000, 20_000, 1e-3)
    assert (c.train.precision, c.train.step, c.train.device) == ("bf16", "compiled", "cuda")
    assert analysis.finished(run_D.metrics)
    assert run_D.metrics["wall_time"][-1] == pytest.approx(179.3, abs=0.1)   # the provenance
    assert "(186.2 s this call)" in (RUN_D / "train.log").read_text()
    note = (RUN_D / "PROVENANCE.md").read_text()
    for fact in ("H200", "df917f2", "--step compiled --precision bf16", "186.2 s", "179.3 s",
                 "2026-12-04", "9 336", "12 036"):
        assert fact in note, fact
    assert sum(p.stat().st_size for p in RUN_D.rglob("*") if p.is_file()) < 1.5e6


@needs_D
def test_every_size_that_learns_has_its_minimum_well_before_the_last_step(run_D):
    """20 000 steps were enough, computed directly from metrics.npz: each of the 20 sizes
    whose minimum test loss is below 0.95 bits reaches it at step 12 036 or before, at least
    two evaluations before the end, and ends more than 2 % above it (it overfits); the
    analysis reports those steps and leaves out no size as still learning."""
    m = run_D.metrics
    loss, steps = m["mean_test_loss"], m["steps"]
    best = np.argmin(loss, axis=1)
    lmin = loss[np.arange(len(best)), best]
    learns = lmin < 0.95 * LN2
    assert learns.sum() == 20
    assert steps[best[learns]].max() == 12_036 and (best[learns] <= len(steps) - 3).all()
    assert (loss[learns, -1] > 1.02 * lmin[learns]).all()
    ours = analysis.analyze([run_D])["runs"][0]["D"]
    paper = analysis.analyze([run_D], method="paper", bootstrap=50)["runs"][0]["D"]
    want = dict(zip(m["D"].tolist(), steps[best].tolist()))
    assert dict(zip(ours["x"], ours["best_step"])) == want
    assert dict(zip(paper["x_all"], paper["best_step"])) == want
    assert ours["window"]["dropped_still_learning"] == []


@needs_D
def test_the_guides_table_of_minima_is_the_data(run_D):
    """docs/parity.md's table of the step, value and final ÷ minimum of each listed size."""
    text = (ROOT / "docs" / "parity.md").read_text()
    header = re.search(r"^  \| D \|(.*)\|$", text, re.M)
    sizes = [int(v.replace(" ", "")) for v in header.group(1).split("|")]
    m = run_D.metrics
    row = {int(d): i for i, d in enumerate(m["D"])}
    loss = m["mean_test_loss"]
    idx = [row[d] for d in sizes]
    best = np.argmin(loss[idx], axis=1)
    lmin = loss[idx, best]
    for label, cells in (("step of the minimum", [f"{s:,}".replace(",", " ")
                                                  for s in m["steps"][best]]),
                         ("minimum (nats)", [f"{v:.3f}" for v in lmin]),
                         ("final ÷ minimum", [f"{v:.2f}" for v in loss[idx, -1] / lmin])):
        assert f"  | {label} | {' | '.join(cells)} |" in text, label


@needs_D
def test_paper_D_is_the_direct_computation(run_D):
    """OLS of log minimum loss (bits) on log D from the first size below 0.95 bits on."""
    m = run_D.metrics
    order = np.argsort(m["D"])
    D, bits = m["D"][order], m["mean_test_loss"].min(axis=1)[order] / LN2
    first = int(np.flatnonzero(bits < 0.95)[0])
    slope = np.polyfit(np.log(D[first:]), np.log(bits[first:]), 1)[0]
    r = analysis.analyze([run_D], method="paper", bootstrap=200).runs[0]["D"]
    assert r["exponent"] == pytest.approx(-slope, rel=1e-9)
    assert r["window"]["n_points"] == len(D) - first == 20


@needs_D
def test_demo_draws_the_D_figures_from_the_shipped_files(run_D, tmp_path, monkeypatch):
    from quanta.commands.parity import _demo_gpu

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    names = {p.name for p in _demo_gpu(run_D, tmp_path)}
    for fig in ("loss_vs_D", "loss_vs_S_by_D", "learned_vs_D", "emergence_D", "paper_D",
                "exponents_by_method"):
        assert f"gpu_fig2_D_{fig}.png" in names and (tmp_path / f"gpu_fig2_D_{fig}.png").stat().st_size
    data = json.loads((tmp_path / "gpu_fig2_D.json").read_text())
    assert {r["regime"] for r in data["table"]} == {"D", "learned_vs_D"}


# ------------------------------------------------ the partial fp32 run, and reading runs cut
needs_fp32 = pytest.mark.skipif(not (FP32 / "metrics.npz").exists(),
                                reason="the partial fp32 run is not in this checkout")


def test_until_reads_a_finished_run_as_it_stood_at_a_step(run):
    """`Run.until`: the bf16 run cut at step 45 549 keeps its first 79 evaluations (the later
    ones unevaluated, as in a paused run) and no later checkpoint, is marked incomplete, and
    its paper-method L(N) is the OLS on that evaluation's column; the run itself is
    unchanged."""
    from common.errors import InputError

    cut = run.until(45_549)
    assert int(cut.metrics["n_evals"]) == 79 and cut.until_step == 45_549
    assert np.isnan(cut.metrics["mean_test_loss"][:, 79:]).all()
    assert np.isnan(cut.metrics["test_loss"][:, 79:]).all() and cut.checkpoint_steps() == []
    assert analysis.finished(run.metrics) and not np.isnan(run.metrics["mean_test_loss"]).any()
    r = analysis.analyze([cut], method="paper", bootstrap=200).runs[0]
    bits = run.metrics["mean_test_loss"][:, 78] / LN2
    slope = np.polyfit(np.log(run.metrics["n_params"]), np.log(bits), 1)[0]
    assert r["N"]["exponent"] == pytest.approx(-slope, rel=1e-9)
    assert r["complete"] is False and "cut there" in r["incomplete"]
    assert run.until(200_000).until_step is None                      # nothing to cut
    with pytest.raises(InputError, match="fewer than two evaluations"):
        run.until(0)


@needs_fp32
def test_the_fp32_partial_run_is_read_as_incomplete(run, capsys):
    """The analysis, the command line, the demo and the report all treat the partial run as
    one: marked INCOMPLETE, never the headline."""
    from quanta import cli
    from quanta.commands.parity import gpu_runs
    from quanta.report.parity import _headlines, run_label

    fp32 = load_run(FP32)
    assert (fp32.config.train.precision, fp32.config.train.steps) == ("fp32", 200_000)
    assert fp32.config.model.widths == run.config.model.widths
    assert not analysis.finished(fp32.metrics) and int(fp32.metrics["n_evals"]) == 79
    r = analysis.analyze([fp32]).runs[0]
    assert (r["complete"], r["steps"], r["planned_steps"]) == (False, 45_549, 200_000)
    assert "step 45549 of 200000" in r["incomplete"] and "paused" in r["incomplete"]
    assert cli.main(["parity", "analyze", str(FP32), "--method", "both", "--bootstrap", "50"]) == 0
    assert "INCOMPLETE" in capsys.readouterr().out
    finished, partial = gpu_runs([run, load_run(RUN_D), fp32])
    assert [r.path for r in finished] == [RUN, RUN_D] and partial == [fp32]
    both = analysis.analyze([fp32, run])                 # the partial run first
    assert _headlines(both) == {1} and "INCOMPLETE" in run_label(both["runs"][0])
    note = (FP32 / "PROVENANCE.md").read_text()
    for fact in ("PARTIAL", "47 049 of 200 000", "df917f2", "--precision fp32", "2026-12-04",
                 "not trajectories"):
        assert fact in note, fact
    assert not (FP32 / "checkpoints").exists()


@needs_fp32
def test_the_guides_precision_table_is_what_the_analysis_prints(run):
    """docs/parity.md's bf16-against-fp32 table: both runs at step 45 549, both methods."""
    text = (ROOT / "docs" / "parity.md").read_text()
    both = analysis.analyze([run.until(45_549), load_run(FP32)], method="both")
    cells = _cells(both)
    assert len(cells) == 12
    for regime, method, cell in cells:
        assert cell in text, (regime, method, cell)


@needs_fp32
def test_the_demo_reads_each_shipped_gpu_run_once(tmp_path, monkeypatch):
    """`make demo` reads each shipped GPU run once and hands it to the headline, the partial
    run's check and the α sweeps (it read each up to three times, and opened its metrics
    twice more to tell a finished run from a partial one). The analyses are stubbed: what
    is tested is what is read and which runs each part gets."""
    import types

    import quanta.commands.parity as cmd
    from empirical import PARITY_RESULTS
    from empirical.parity import alpha_sweep

    opened, load = [], np.load

    def counting_load(path, *args, **kwargs):
        opened.append(Path(path).resolve())
        return load(path, *args, **kwargs)

    given: dict = {"headline": [], "partial": [], "sweeps": []}

    def stub(part):
        def analyze(runs, **_):
            given[part].append([r.path.relative_to(PARITY_RESULTS).as_posix() for r in runs])
            return types.SimpleNamespace(summary=str, to_dict=dict, plot=lambda: plt,
                                         runs=[{"N": {"exponent": None}}])
        return analyze

    plt = types.SimpleNamespace(figure=None)
    monkeypatch.setattr(np, "load", counting_load)
    monkeypatch.setattr(analysis, "analyze", lambda runs, method="quanta", **kw: stub(
        "headline" if method == "both" else "partial")(runs))
    monkeypatch.setattr(alpha_sweep, "alpha_sweep", stub("sweeps"))
    monkeypatch.setattr(cmd, "analysis_figures", lambda *a, **k: [])
    monkeypatch.setattr(cmd, "save_figure", lambda *a, **k: None)
    monkeypatch.setattr(cmd, "_demo_cpu_checks", lambda *a: [])
    monkeypatch.setattr(cmd, "_demo_live", lambda *a: [])
    cmd.demo(tmp_path)
    gpu = [p for p in opened if p.parent.name.startswith("gpu_") or
           p.parent.parent.name.startswith("gpu_")]
    assert len(gpu) == len(set(gpu)) == 11, sorted(gpu)    # 10 finished runs, 1 partial
    assert given["headline"] == [[f"gpu_D_alpha0.{a}"] for a in range(1, 6)] + [
        ["gpu_fig2_D"], ["gpu_fig2_NS"], ["gpu_fig2_NS_v2"]]
    assert given["partial"] == [["gpu_fig2_NS"], ["gpu_fig2_NS_v2"],
                                ["gpu_fig2_NS_fp32_partial"]]
    assert sorted(given["sweeps"]) == [[f"gpu_D_alpha0.{a}" for a in range(1, 6)], [
        "gpu_fig10_NS_0.1_0.2/alpha0.1", "gpu_fig10_NS_0.1_0.2/alpha0.2"]]
