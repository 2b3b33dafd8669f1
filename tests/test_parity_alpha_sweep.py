"""Exponents against α across runs (empirical.parity.alpha_sweep, `quanta parity alphas`):
on the committed CPU runs of known α the measured exponents rise with α and the theory
column is α and α/(α+1); each seed alone reads like a run of that seed alone; intervals at
any level; runs of different settings are flagged; one α is refused."""
import json
from pathlib import Path

import numpy as np
import pytest

from common.errors import InputError
from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, load_run
from empirical.parity.alpha_sweep import alpha_sweep, seed_view
from empirical.parity.train import network_table
from quanta import cli

RESULTS = Path(__file__).resolve().parents[1] / "results" / "parity"
CPU_ALPHAS = (0.1, 0.2, 0.4, 0.6, 0.8)


def planted(path, alpha: float, exponents: dict, widths=(4, 8, 16, 32, 64, 128, 256, 512)):
    """A run directory (no training) whose final loss of seed s falls as N^-exponents[s] (a
    loss of 0.05 nats at the widest network), each width's loss falling as S^-0.3 up to step
    50 000 and flat after it (not still learning); ``exponents`` maps seed → e."""
    seeds = sorted(exponents)
    cfg = RunConfig(TaskConfig(n_tasks=30, n_bits=12, alpha=alpha), ModelConfig(widths=list(widths)),
                    TrainConfig(steps=100_000, batch=10, seeds=seeds))
    path = Path(path)
    path.mkdir(parents=True)
    (path / "config.json").write_text(cfg.to_json())
    nets, task = network_table(cfg), load_run(path).task
    steps = np.concatenate([[0], np.unique(np.geomspace(1, 100_000, 60).astype(int))])
    n_params = np.array([task.n_params(n["width"]) for n in nets], float)
    e = np.array([exponents[n["seed"]] for n in nets])
    final = 0.05 * (n_params / n_params.max()) ** -e
    mean = final[:, None] * (np.clip(steps, 1, 50_000)[None, :] / 50_000) ** -0.3
    loss = np.where(steps[None, :, None] >= 50 / task.frequencies[None, None, :], 1e-3, np.log(2))
    loss = np.broadcast_to(loss, (len(nets), len(steps), 30)).astype(np.float32)
    np.savez(path / "metrics.npz", steps=steps, widths=np.array([n["width"] for n in nets]),
             seeds=np.array([n["seed"] for n in nets]), D=np.zeros(len(nets), int),
             n_params=n_params, frequencies=task.frequencies, test_loss=loss,
             mean_test_loss=mean, n_evals=np.array(len(steps)))
    return path


@pytest.fixture(scope="module")
def cpu_sweep():
    return alpha_sweep([RESULTS / f"N_alpha{a:g}" for a in CPU_ALPHAS], method="both",
                       bootstrap=50)


def _mean_rows(result, method, regime):
    return sorted((r for r in result.rows() if r["method"] == method and r["regime"] == regime
                   and r["seed"] == "mean"), key=lambda r: r["alpha"])


def test_on_cpu_runs_of_known_alpha_the_exponents_rise_with_alpha(cpu_sweep):
    """The committed CPU runs (16 subtasks, α = 0.1 … 0.8): α_N and α_S rise with α by our
    method (0.09 → 0.65 and 0.06 → 0.42), and the theory column is α and α/(α+1)."""
    for regime, theory in (("N", lambda a: a), ("S", lambda a: a / (a + 1))):
        rows = _mean_rows(cpu_sweep, "quanta", regime)
        assert [r["alpha"] for r in rows] == list(CPU_ALPHAS)
        assert np.all(np.diff([r["exponent"] for r in rows]) > 0), regime
        assert [r["theory"] for r in rows] == pytest.approx([theory(a) for a in CPU_ALPHAS])
        for r in rows:
            assert r["lower"] <= r["exponent"] <= r["upper"]
            assert r["covers"] == (r["lower"] <= r["theory"] <= r["upper"])
    cov = cpu_sweep.coverage()["quanta:N"]
    rows = _mean_rows(cpu_sweep, "quanta", "N")
    assert cov["of"] == 5 and cov["covers"] == sum(r["covers"] for r in rows)
    assert cov["mean_difference"] == pytest.approx(np.mean([r["exponent"] - r["theory"]
                                                            for r in rows]))
    assert {r["method"] for r in cpu_sweep.rows()} == {"quanta", "paper"}
    assert cpu_sweep.mixed == []


def test_each_seed_reads_like_the_run_of_that_seed_alone(tmp_path):
    """A two-seed run with different planted exponents per seed: each seed's rows equal the
    analysis of a run directory written with that seed alone, and the seeds differ as
    planted."""
    exps = {0: 0.35, 1: 0.55}
    two = [planted(tmp_path / f"a{a}", a, {s: e + a for s, e in exps.items()}) for a in (0.2, 0.4)]
    alone = [planted(tmp_path / f"a{a}_s{s}", a, {s: e + a}) for a in (0.2, 0.4)
             for s, e in exps.items()]
    sweep = alpha_sweep(two, method="quanta")
    single = {(r["alpha"], r["regime"], r["exponent"]) for r in
              alpha_sweep(alone, method="quanta", per_seed=False).rows()}
    by_seed = [r for r in sweep.rows() if r["seed"] != "mean"]
    assert len(by_seed) == 8                                  # 2 α × 2 seeds × (N, S)
    for r in by_seed:
        assert any(a == r["alpha"] and g == r["regime"] and e == pytest.approx(r["exponent"])
                   for a, g, e in single), r
    for a in (0.2, 0.4):
        n = {r["seed"]: r["exponent"] for r in sweep.rows() if r["alpha"] == a and r["regime"] == "N"}
        assert n[0] < n[1]                         # planted 0.35 + α < 0.55 + α
    view = seed_view(load_run(two[0]), 1)
    assert set(view.metrics["seeds"]) == {1} and view.config.train.seeds == [1]
    with pytest.raises(InputError, match="seed 7 is not in"):
        seed_view(load_run(two[0]), 7)


def test_intervals_at_any_level_and_names(tmp_path):
    runs = [planted(tmp_path / f"a{a}", a, {0: a + 0.3}) for a in (0.2, 0.4)]
    sweep = alpha_sweep(runs, method="quanta")
    assert set(sweep.params) == {"quanta:N@alpha=0.2", "quanta:S@alpha=0.2",
                                 "quanta:N@alpha=0.4", "quanta:S@alpha=0.4"}
    wide, narrow = sweep.conf_int(alpha=0.05), sweep.conf_int(alpha=0.5)
    for name, v in sweep.params.items():
        assert wide.loc[name, "lower"] <= narrow.loc[name, "lower"] <= v
        assert v <= narrow.loc[name, "upper"] <= wide.loc[name, "upper"]
    row = next(r for r in sweep.rows() if r["alpha"] == 0.2 and r["regime"] == "N")
    assert [row["lower"], row["upper"]] == pytest.approx(wide.loc["quanta:N@alpha=0.2"].tolist())


def test_runs_of_different_settings_are_flagged(tmp_path):
    runs = [planted(tmp_path / "a", 0.2, {0: 0.5}),
            planted(tmp_path / "b", 0.4, {0: 0.7}, widths=(8, 16, 32, 64, 128, 256))]
    sweep = alpha_sweep(runs, method="quanta")
    assert sweep.mixed == ["N", "S"] and "mixed" in sweep.summary()
    # two runs of one folder name (in different places) are two runs, not one
    same_name = [planted(tmp_path / "c" / "run", 0.2, {0: 0.5}),
                 planted(tmp_path / "d" / "run", 0.4, {0: 0.7}, widths=(8, 16, 32, 64, 128))]
    assert alpha_sweep(same_name, method="quanta").mixed == ["N", "S"]


def test_command_line(tmp_path, capsys):
    runs = [str(planted(tmp_path / f"a{a}", a, {0: a + 0.3})) for a in (0.2, 0.4)]
    out, fig = tmp_path / "s.json", tmp_path / "s.png"
    assert cli.main(["parity", "alphas", *runs, "--method", "paper", "--bootstrap", "30",
                     "--json", str(out), "--plot", str(fig)]) == 0
    data = json.loads(out.read_text())
    assert data["method"] == "paper" and {r["method"] for r in data["rows"]} == {"paper"}
    assert {"alpha", "seed", "regime", "exponent", "lower", "upper", "theory",
            "covers"} <= set(data["rows"][0])
    assert fig.stat().st_size > 0
    assert cli.main(["parity", "alphas", runs[0]]) == 2
    assert "at least two α" in capsys.readouterr().err
