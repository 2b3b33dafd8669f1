"""The GPU runs of device calls 5-7 (main at 87cc6d4): gpu_fig2_NS_v2 (the Figure-2 sweep
again, timed), gpu_fig10_NS_0.1_0.2 (Figure 10 at α = 0.1, 0.2) and gpu_D_alpha0.1…0.5 (the
α sweep of D): what they are and that they are complete, that their provenance states the
facts the metrics hold, and that docs/parity.md's tables are what the analysis computes."""
from pathlib import Path

import numpy as np
import pytest

from empirical.parity import analysis, load_run
from empirical.parity.alpha_sweep import alpha_sweep

ROOT = Path(__file__).resolve().parents[1]
PARITY = ROOT / "results" / "parity"
V1, V2 = PARITY / "gpu_fig2_NS", PARITY / "gpu_fig2_NS_v2"
FIG10 = [PARITY / "gpu_fig10_NS_0.1_0.2" / f"alpha{a}" for a in ("0.1", "0.2")]
D_RUNS = [PARITY / f"gpu_D_alpha0.{i}" for i in range(1, 6)]
ALL = [V2, *FIG10, *D_RUNS]

pytestmark = pytest.mark.skipif(not all((p / "metrics.npz").exists() for p in ALL),
                                reason="the GPU runs of calls 5-7 are not in this checkout")


def _doc() -> str:
    return (ROOT / "docs" / "parity.md").read_text()


def _cell(v, lo, hi, digits=3) -> str:
    return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]".replace("-", "−")


@pytest.mark.parametrize("path, networks, steps, evals, clock", [
    (V2, 30, 200_000, 91, 149.8), (FIG10[0], 36, 100_000, 50, 150.8),
    (FIG10[1], 36, 100_000, 50, 150.8), *[(p, 12, 25_000, 56, None) for p in D_RUNS]],
    ids=lambda v: v.name if isinstance(v, Path) else None)
def test_each_run_is_complete_and_its_provenance_says_so(path, networks, steps, evals, clock):
    run = load_run(path)
    c, m = run.config, run.metrics
    assert (c.task.n_tasks, c.task.n_bits, c.task.k, c.train.batch) == (500, 100, 3, 20_000)
    assert (c.train.precision, c.train.step, c.train.device) == ("bf16", "compiled_graphs", "cuda")
    assert analysis.finished(m) and run.planned_steps == steps == int(m["steps"][-1])
    assert len(m["widths"]) == networks and int(m["n_evals"]) == evals
    note_dir = path if path.name.startswith("gpu") else path.parent
    note = (note_dir / "PROVENANCE.md").read_text()
    for fact in ("H200", "87cc6d4", "2.11.0+cu130", "--step compiled_graphs --precision bf16",
                 f"{steps:,}".replace(",", " ") + " steps"):
        assert fact in note, (path.name, fact)
    if clock is not None:
        assert m["wall_time"][-1] == pytest.approx(clock, abs=0.05)
        assert f"{clock} s on the run's" in note.replace("\n  ", " ")


def test_the_second_run_shares_the_first_runs_start_but_not_its_batches():
    """Same initialisation and test set (identical per-subtask losses at step 0), other
    batches (they differ after step 1), 164.2 s end to end in the provenance and
    BENCHMARKS.md, the float16 final checkpoint shipped."""
    a, b = load_run(V1), load_run(V2)
    assert np.array_equal(a.metrics["test_loss"][:, 0], b.metrics["test_loss"][:, 0])
    assert not np.array_equal(a.metrics["test_loss"][:, 1], b.metrics["test_loss"][:, 1])
    assert (a.config.train.sampler, b.config.train.sampler) == ("streams", "counter")
    assert b.checkpoint_steps() == [200_000]
    assert "164.2 s end to end" in (V2 / "PROVENANCE.md").read_text()
    assert "**164.2 s**" in (ROOT / "BENCHMARKS.md").read_text()


def test_the_guides_reproducibility_table_is_what_the_analysis_prints():
    """docs/parity.md's two-run table: both runs, both methods, at step 200 000."""
    text, both = _doc(), analysis.analyze([load_run(V1), load_run(V2)], method="both")
    rows = {(r["run"], r["regime"]): r for r in both.rows()}
    for regime in ("N", "S", "convergence"):
        cells = [_cell(rows[(run, regime)][m], *rows[(run, regime)][f"{m}_conf_int"])
                 for m in ("quanta", "paper") for run in ("gpu_fig2_NS", "gpu_fig2_NS_v2")]
        for method, pair in (("ours", cells[:2]), ("the paper's", cells[2:])):
            assert any(ln.startswith("| ") and f", {method}" in ln and pair[0] in ln
                       and pair[1] in ln for ln in text.splitlines()), (regime, method, pair)


@pytest.fixture(scope="module")
def sweeps():
    return alpha_sweep(FIG10, method="both"), alpha_sweep(D_RUNS, method="both")


def test_the_guides_alpha_sweep_tables_are_what_the_analysis_prints(sweeps):
    """Every seed-mean exponent of the N/S and D tables of docs/parity.md, with its
    interval, and the seed ranges of the N/S table, from `alpha_sweep` on the shipped runs."""
    text = _doc()
    for sweep in sweeps:
        for r in sweep.rows():
            if r["seed"] == "mean":
                assert _cell(r["exponent"], r["lower"], r["upper"]) in text, r
    ns = sweeps[0].rows()
    for a in (0.1, 0.2):
        for method in ("quanta", "paper"):
            for regime in ("N", "S"):
                e = [r["exponent"] for r in ns if r["alpha"] == a and r["method"] == method
                     and r["regime"] == regime and r["seed"] != "mean"]
                assert len(e) == 3 and f"{min(e):.3f}–{max(e):.3f}" in text, (a, method, regime)
    cov = sweeps[1].coverage()["quanta:D"]
    assert (cov["covers"], cov["of"]) == (4, 5) and round(cov["mean_difference"], 3) == -0.004
    assert "covers the theory at 4 of the 5 α" in text.replace("\n  ", " ")


def test_the_theory_column_is_alpha_and_alpha_over_alpha_plus_one(sweeps):
    for sweep in sweeps:
        for r in sweep.rows():
            want = r["alpha"] if r["regime"] == "N" else r["alpha"] / (r["alpha"] + 1)
            assert r["theory"] == pytest.approx(want)
    d = sorted((r for r in sweeps[1].rows() if r["method"] == "quanta"), key=lambda r: r["alpha"])
    assert [r["alpha"] for r in d] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert np.all(np.diff([r["exponent"] for r in d]) > 0)     # α_D rises with α
