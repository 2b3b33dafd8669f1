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


def _kept(doc: dict) -> str:
    """Which samples QDG clustered: 'samples with loss < 0.1 nats' or 'all samples'."""
    thr = doc.get("loss_threshold")
    return "all samples" if thr is None else f"samples with loss < {thr:g} nats"


def _last_clustered(doc: dict) -> int | None:
    """The index of the last checkpoint with enough samples to cluster (None: none had)."""
    clustered = [i for i, r in enumerate(doc["checkpoints"]) if r.get("ari") is not None]
    return clustered[-1] if clustered else None


def _network_rows(d: Doc, last: int, block: Block, what_prefix: str = "") -> None:
    """One network's estimator rows and its agreement note, at checkpoint ``last``."""
    row = d.at("checkpoints", last)
    name = Path(str(d.at("run_dir"))).name
    what = f"{what_prefix}{name}, step {row['step']}, {row.get('n_kept')} samples kept"
    block.rows += _estimator_rows(d, ["checkpoints", last, "estimators"], what)
    block.notes.append(f"{what_prefix}step {row['step']}: ARI {fmt(row['ari'], 2)}, NMI "
                       f"{fmt(row.get('nmi'), 2)} against the true subtasks; α of the kept "
                       f"samples' subtask frequencies {fmt(row.get('alpha_kept'), 3)}")


def _sizes_figure(doc: dict, last: int, name: str) -> Figure | None:
    from empirical.qdg.plots import plot_rank_frequency

    row = doc["checkpoints"][last]
    if "sizes" not in row:
        return None
    ax = plot_rank_frequency(row["sizes"], alpha_true=doc["alpha_true"],
                             true_label="true subtasks")
    return Figure(to_svg(ax.figure, name), f"Cluster sizes at step {row['step']} (network "
                  f"{doc.get('network')}, width {doc.get('width')}) against the subtasks' own "
                  "sizes and the predicted slope.")


def parity_block(item) -> list[Block]:
    """QDG on a parity network: clusters against the true subtasks, and α from their sizes."""
    from empirical.qdg.plots import plot_parity_checkpoints

    d = Doc(item.doc)
    name = Path(str(d.at("run_dir"))).name
    block = Block(f"QDG on a parity run ({name}, network {d.get('network')}, "
                  f"{_kept(item.doc)})", str(item.path), str(item.json_file))
    last = _last_clustered(item.doc)
    if last is None:
        block.lead = "No checkpoint had enough samples to cluster."
        return [block]
    ax = plot_parity_checkpoints(item.doc)
    block.figures.append(Figure(to_svg(ax.figure, "qdg-parity"),
                                "Agreement of the QDG clusters with the true subtasks over "
                                "training (ARI, NMI)."))
    sizes = _sizes_figure(item.doc, last, "qdg-parity-sizes")
    if sizes is not None:
        block.figures.append(sizes)
    _network_rows(d, last, block)
    return [block]


def networks_block(item) -> list[Block]:
    """QDG on several networks of one parity run (``quanta qdg parity --networks``): the
    agreement and the α by width, each network's estimators against the data's α, and its
    calibrated α where the run applied the toy study's calibration."""
    import matplotlib.pyplot as plt

    from empirical.qdg.parity import plot_alpha_by_width, plot_scores_by_width

    d = Doc(item.doc)
    nets = d.at("networks")
    widths = [n.get("width") for n in nets]
    name = Path(str(d.at("run_dir"))).name
    block = Block(f"QDG on {len(nets)} networks of a parity run ({name}, widths "
                  f"{', '.join(map(str, widths))}; {_kept(nets[0])})", str(item.path),
                  str(item.json_file))
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    plot_scores_by_width(nets, ax=a)
    plot_alpha_by_width(nets, ax=b)
    fig.tight_layout()
    block.figures.append(Figure(to_svg(fig, "qdg-networks"), "Agreement of the clusters with "
                                "the true subtasks (left) and α from the cluster sizes, raw and "
                                "calibrated, against the data's α (right), by network width, "
                                "at each network's last clustered checkpoint."))
    sizes = []
    for i, net in enumerate(nets):
        last = _last_clustered(net)
        if last is None:
            block.notes.append(f"width {net.get('width')}: no checkpoint had enough samples "
                               "to cluster")
            continue
        sub = d.sub("networks", i)
        _network_rows(sub, last, block, f"width {net.get('width')}: ")
        block.rows += _calibrated_rows(sub, last, f"width {net.get('width')}")
        figure = _sizes_figure(net, last, f"qdg-network-{i}")
        if figure is not None:
            sizes.append(figure)
    if sizes:
        block.more.append(("Cluster sizes of each network", sizes))
    return [block]


def _calibrated_rows(d: Doc, last: int, what: str) -> list:
    """The recommended estimator's α, calibrated by the toy bias study, against the data's α."""
    cal = d.get("checkpoints", last, "calibrated")
    if not cal:
        return []
    keys = ["checkpoints", last, "calibrated"]
    return [d.row(f"α̂ ({cal['estimator']}, K = {cal['k']}, calibrated)",
                  f"{what}: the toy study's calibration applied", [*keys, "alpha_calibrated"],
                  ci=[*keys, "ci_calibrated"], theory=["alpha_true"])]


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
