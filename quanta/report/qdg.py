"""The QDG section: ``quanta qdg toy --json``, ``quanta qdg parity --json`` and ``quanta qdg
bias`` folders. The α read from cluster sizes is set against the α that made the data; the
bias study says how far each estimator is known to miss."""
from __future__ import annotations

from pathlib import Path

from quanta.report.content import Block, Cell, Doc, Figure, fmt
from quanta.report.svg import to_svg


def _estimator_rows(d: Doc, keys: list, what: str) -> list:
    estimators = d.at(*keys)
    return [d.row(f"α̂ ({name})", what, [*keys, name, "alpha_hat"], ci=[*keys, name, "ci"],
                  theory=["alpha_true"]) for name in estimators]


def _by_k(values: dict | None) -> str:
    return ", ".join(f"K = {k}: {fmt(v, 2)}" for k, v in (values or {}).items())


def toy_block(item) -> list[Block]:
    """QDG on toy embeddings with planted Zipfian clusters (α known)."""
    from empirical.qdg.plots import plot_rank_frequency

    d = Doc(item.doc)
    cfg = d.get("config") or {}
    env = d.get("estimators", "envelope", "alpha_hat")
    ax = plot_rank_frequency(d.at("sizes"), alpha_true=d.at("alpha_true"), alpha_hat=env)
    what = (f"toy: {cfg.get('n_clusters')} clusters, {cfg.get('n_samples')} samples, "
            f"dim {cfg.get('dim')}, σ = {cfg.get('sigma')}, seed {cfg.get('seed')}")
    caption = (f"Cluster sizes against rank for each K, their envelope, the planted sizes and "
               f"the predicted slope −(α+1) at α = {d.at('alpha_true'):g}.")
    block = Block(f"QDG on toy embeddings (α = {d.at('alpha_true'):g})", str(item.path),
                  str(item.json_file), [Figure(to_svg(ax.figure, "qdg-toy"), caption)],
                  rows=_estimator_rows(d, ["estimators"], what))
    block.notes.append(f"agreement with the planted clusters (ARI): {_by_k(d.get('ari'))}")
    return [block]


def parity_block(item) -> list[Block]:
    """QDG on a parity network: clusters against the true subtasks, and α from their sizes."""
    from empirical.qdg.plots import plot_parity_checkpoints, plot_rank_frequency

    d = Doc(item.doc)
    rows = d.at("checkpoints")
    clustered = [i for i, r in enumerate(rows) if r.get("ari") is not None]
    name = Path(str(d.at("run_dir"))).name
    block = Block(f"QDG on a parity run ({name}, network {d.get('network')})", str(item.path),
                  str(item.json_file))
    if not clustered:
        block.lead = "No checkpoint had enough samples to cluster."
        return [block]
    last = clustered[-1]
    ax = plot_parity_checkpoints(item.doc)
    block.figures.append(Figure(to_svg(ax.figure, "qdg-parity"),
                                "Agreement of the QDG clusters with the true subtasks over "
                                "training (ARI, NMI)."))
    if "sizes" in rows[last]:
        ax = plot_rank_frequency(rows[last]["sizes"], alpha_true=d.at("alpha_true"),
                                 true_label="true subtasks")
        block.figures.append(Figure(to_svg(ax.figure, "qdg-parity-sizes"),
                                    f"Cluster sizes at step {rows[last]['step']} against the "
                                    "subtasks' own sizes and the predicted slope."))
    what = f"{name}, step {rows[last]['step']}, {rows[last].get('n_kept')} samples kept"
    block.rows = _estimator_rows(d, ["checkpoints", last, "estimators"], what)
    block.notes.append(f"step {rows[last]['step']}: ARI {fmt(rows[last]['ari'], 2)}, NMI "
                       f"{fmt(rows[last].get('nmi'), 2)} against the true subtasks; α of the "
                       f"kept samples' subtask frequencies {fmt(rows[last].get('alpha_kept'), 3)}")
    return [block]


def bias_block(item) -> list[Block]:
    """A toy bias study: each estimator's bias over a grid of settings, and the recommended
    one with its calibration."""
    import matplotlib.pyplot as plt

    from empirical.qdg.plots import plot_alpha_recovery, plot_bias

    d = Doc(item.doc)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_bias(item.tables["summary"], ax=ax)
    figures = [Figure(to_svg(fig, "qdg-bias"), "Bias α̂ − α of each estimator against the "
                      "true α, averaged over the study's settings (an unbiased one: 0).")]
    best = d.get("recommended")
    if best:
        ax = plot_alpha_recovery(item.tables["runs"], best["estimator"], best["k"],
                                 best.get("calibration"))
        figures.append(Figure(to_svg(ax.figure, "qdg-recovery"),
                              f"The recommended estimator ({best['estimator']}, K = "
                              f"{best['k'] or 'all'}): α̂ against α with its calibration."))
    rows = [d.row("bias of α̂", f"{t['estimator']}" + (f", K = {t['k']}" if t["k"] else ""),
                  ["estimators", i, "mean_bias"], theory=Cell(0.0), remark=_bias_words(t))
            for i, t in enumerate(d.at("estimators"))]
    lead = ""
    if best:
        cal = best.get("calibration") or {}
        lead = (f"Recommended: {best['estimator']}" + (f" at K = {best['k']}" if best["k"] else "")
                + f", mean bias {fmt(best['mean_bias'], 2)}, RMSE {fmt(best['rmse'], 2)}; "
                f"calibrated as α̂ = {fmt(cal.get('c0'), 2)} + {fmt(cal.get('c1'), 2)} α, it "
                f"leaves a spread of {fmt(cal.get('residual_sd'), 2)}.")
    return [Block("QDG's bias on toy data", str(item.path), str(item.json_file), figures,
                  rows=rows, lead=lead)]


def _bias_words(t: dict) -> str:
    b = t.get("mean_bias")
    if b is None:
        return "no estimate"
    return (f"{'over' if b > 0 else 'under'}estimates α by {fmt(abs(b), 2)} on average "
            f"(RMSE {fmt(t.get('rmse'), 2)})")
