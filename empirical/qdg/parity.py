"""QDG on multitask sparse parity, where the true quanta (the subtasks) are known.

For a network of a parity run (default: the widest) at each chosen checkpoint: draw
``n_samples`` inputs from the task's Zipfian subtask distribution, or from the subtasks the
network has learned (``subtasks="learned"``), the same inputs at every checkpoint; keep those
the network gets right with loss below ``loss_threshold`` (nats; the paper keeps low-loss
samples), compute their per-sample gradients (exactly, in factored form: the MLP is all
``nn.Linear``; or vmap'ed and randomly projected with ``project_dim``), cluster them (QDG) and
compare the clusters with the subtask labels (ARI, NMI), the estimated α with the α of the
data (raw, and through the toy study's linear calibration), and record which subtasks have a
matching cluster (best Jaccard overlap ≥ 0.5).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from common.errors import InputError
from common.results import percentile_interval
from empirical import PARITY_RESULTS
from fit.sizes import ZIPF_MLE_MAX, zipf_mle

from .clustering import QDGClusteringSweep, cluster_sizes
from .estimators import ESTIMATORS, estimate_alpha, estimate_all
from .gradients import linear_gradient_factors, log_cross_entropy_loss, per_sample_gradients
from .toy import apply_calibration

#: a subtask counts as found when some cluster overlaps it with Jaccard index ≥ this
MATCH_JACCARD = 0.5
#: the committed toy bias study, whose recommended estimator's calibration is applied
BIAS_REPORT = Path(__file__).resolve().parents[2] / "results" / "qdg" / "bias" / "report.json"


def default_run_dir() -> Path | None:
    """The committed CPU-scale parity run made for QDG (16 subtasks, 14 learned), else the
    older 40-subtask run, if this checkout has one."""
    for p in (PARITY_RESULTS / "qdg_source" / "alpha0.4", PARITY_RESULTS / "online_alpha0.4"):
        if (p / "checkpoints").is_dir():
            return p
    return None


def matched_subtasks(labels, subtasks, threshold: float = MATCH_JACCARD) -> dict[int, float]:
    """Subtask → best Jaccard overlap with any cluster, for subtasks whose best overlap is
    at least ``threshold``."""
    labels, subtasks = np.asarray(labels), np.asarray(subtasks)
    _, li = np.unique(labels, return_inverse=True)
    su, si = np.unique(subtasks, return_inverse=True)
    table = np.zeros((su.size, li.max() + 1))
    np.add.at(table, (si, li), 1)
    union = table.sum(1, keepdims=True) + table.sum(0, keepdims=True) - table
    best = (table / union).max(axis=1)
    return {int(s): float(b) for s, b in zip(su, best) if b >= threshold}


def margin_affinity(affinity, y) -> np.ndarray:
    """QDG's affinity of the logit-margin gradients ∂(z₀ − z₁)/∂θ, from the affinity of the
    cross-entropy gradients of a two-class model with labels ``y`` ∈ {0, 1}.

    With two logits the loss gradient is exactly c·s·∂(z₀ − z₁)/∂θ with c = 1 − p_y > 0
    and s = +1 for label 1, −1 for label 0, so cos(margin_i, margin_j) =
    s_i s_j cos(loss_i, loss_j): the label's sign is removed and what is left is the
    mechanism (which units and inputs the sample uses)."""
    A = np.asarray(affinity, dtype=np.float64)
    s = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    if A.ndim != 2 or A.shape != (s.size, s.size):
        raise InputError(f"affinity must be {s.size} x {s.size} (one row per label), got {A.shape}")
    if not np.isin(y, (0, 1)).all():
        raise InputError("y: labels must be 0 or 1")
    cos = np.cos(np.pi * (1.0 - A)) * s[:, None] * s[None, :]
    out = (1.0 - np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi).astype(np.float32)
    np.fill_diagonal(out, 1.0)
    return np.maximum(out, out.T)      # exactly symmetric despite float rounding


def subtask_contrast(affinity, subtasks) -> dict[str, float]:
    """Mean cosine (from QDG's affinity) between distinct samples of the same subtask and of
    different subtasks: how far apart the subtasks are in gradient space."""
    cos = np.cos(np.pi * (1.0 - np.asarray(affinity, dtype=np.float64)))
    sub = np.asarray(subtasks)
    same = sub[:, None] == sub[None, :]
    np.fill_diagonal(same, False)
    other = sub[:, None] != sub[None, :]
    return {"cos_same_subtask": float(cos[same].mean()) if same.any() else None,
            "cos_other_subtasks": float(cos[other].mean()) if other.any() else None}


def alpha_kept(subtasks) -> float | None:
    """The Zipf-MLE α of the subtask counts among the kept samples (what a perfect
    clustering would report), or None when fewer than 3 subtasks are kept or the fit runs
    into its bound: one or two counts do not determine a power law."""
    sizes = cluster_sizes(subtasks)
    if len(sizes) < 3:
        return None
    rank_exponent = zipf_mle(sizes)
    return None if rank_exponent > ZIPF_MLE_MAX - 0.01 else rank_exponent - 1.0


def _steps(run, checkpoints) -> list[int]:
    available = run.checkpoint_steps()
    if not available:
        raise InputError(f"no checkpoints in {run.path}")
    if checkpoints in (None, "last"):
        return [available[-1]]
    if checkpoints == "all":
        return available
    steps = sorted({int(s) for s in (checkpoints.split(",") if isinstance(checkpoints, str)
                                     else checkpoints)})      # chronological: "first found"
    missing = sorted(set(steps) - set(available))
    if missing:
        raise InputError(f"checkpoints: steps {missing} not saved; available: {available}")
    return steps


def load_calibration(path=None) -> dict | None:
    """The recommended estimator of a toy bias study (``report.json`` of ``quanta qdg bias``;
    default the committed one, None if this checkout has none): estimator, toy K and the
    linear calibration α̂ = c0 + c1·α with the residual SD it leaves."""
    import json

    path = BIAS_REPORT if path is None else Path(path)
    if not path.exists():
        if path == BIAS_REPORT:
            return None
        raise InputError(f"calibration: no bias report at {path}")
    best = json.loads(path.read_text()).get("recommended")
    if not best or best["calibration"].get("c1") is None:
        raise InputError(f"calibration: {path} recommends no calibrated estimator")
    source = "results/qdg/bias/report.json" if path == BIAS_REPORT else str(path)
    return dict(estimator=best["estimator"], toy_k=best["k"], source=source,
                **{k: best["calibration"][k] for k in ("c0", "c1", "residual_sd")})


def calibrated_alpha(sizes_by_k: dict, labels_by_k: dict, calibration: dict, *,
                     bootstrap: int = 100, seed=0, alpha_true: float | None = None) -> dict:
    """α by the bias study's recommended estimator on the smallest K of this clustering
    sweep (its recommendation: K below the number of well-populated clusters), raw and
    mapped through the linear calibration α = (α̂ − c0)/c1 (interval mapped the same way;
    the calibration's own ``residual_sd`` is not in the interval)."""
    k = min(sizes_by_k)
    est = estimate_alpha(sizes_by_k, calibration["estimator"], k=k, bootstrap=bootstrap,
                         seed=seed, labels_by_k=labels_by_k)
    lo, hi = percentile_interval(est.bootstrap, est.level)   # (NaN, NaN) without one
    out = dict(estimator=calibration["estimator"], k=k, alpha_raw=est.alpha_hat,
               ci_raw=[lo, hi], alpha_calibrated=float(apply_calibration(est.alpha_hat,
                                                                          calibration)),
               ci_calibrated=sorted(float(apply_calibration(v, calibration)) for v in (lo, hi)),
               calibration={k: calibration[k] for k in ("c0", "c1", "residual_sd", "toy_k",
                                                        "source")})
    if alpha_true is not None:
        out["alpha_true"] = alpha_true
    return out


def learned_subtasks(run, network: int, step: int, threshold: float) -> np.ndarray:
    """The subtasks whose test loss (nats) at the last evaluation at or before ``step`` is
    below ``threshold``, for ``network``: what it has learned by then."""
    m = run.metrics
    steps = m["steps"][:int(m["n_evals"])]
    at = int(np.searchsorted(steps, step, side="right")) - 1
    return np.flatnonzero(m["test_loss"][network, max(at, 0)] < threshold)


def _draw_samples(task, n: int, gen: torch.Generator, subtasks=None):
    """``n`` samples (x, y, subtask) from the task's Zipfian distribution, restricted to
    ``subtasks`` (renormalised) when given."""
    if subtasks is None:
        return task.sample(int(n), gen)
    p = torch.as_tensor(task.frequencies[subtasks], dtype=torch.float64)
    sub = torch.as_tensor(subtasks)[torch.multinomial(p, int(n), replacement=True,
                                                      generator=gen)]
    bits = torch.randint(0, 2, (int(n), task.n_bits), generator=gen, dtype=torch.uint8)
    return task.encode(sub, bits), task.label(sub, bits), sub


def _cluster(data, ks: list[int], *, n_init: int, seed: int, affinity: str = "gradients"):
    """QDG's spectral clustering for each K: (labels by K, sizes by K, affinity)."""
    model = QDGClusteringSweep(ks, affinity=affinity, n_init=n_init,
                               random_state=seed).fit(data)
    return model.labels_by_k_, model.cluster_sizes_, model.affinity_


def _scores(true, labels_by_k: dict) -> tuple[dict, dict]:
    """ARI and NMI of each K's clusters against ``true``."""
    return ({k: adjusted_rand_score(true, v) for k, v in labels_by_k.items()},
            {k: normalized_mutual_info_score(true, v) for k, v in labels_by_k.items()})


def _gradients(mlp, x, y, project_dim, seed):
    """Directions of ∇log L_i (those of ∇L_i at O(1) size: long-trained networks are
    confident enough for ∇L_i to underflow): exact factored gradients, or projected."""
    if project_dim is None:
        return linear_gradient_factors(mlp, x, y, loss_fn=log_cross_entropy_loss)
    return per_sample_gradients(mlp, x, y, project_dim=project_dim, seed=seed,
                                loss_fn=log_cross_entropy_loss)


def _cluster_counts(ks, n_present: int) -> list[int]:
    """The K of a checkpoint: given, or ½×, 1× and 2× the subtasks present (at least 3)."""
    if ks is not None:
        return sorted(int(k) for k in ks)
    return sorted({max(3, n_present // 2), max(3, n_present), 2 * n_present})


def _kept_samples(mlp, x, y, loss_threshold):
    """Which samples the network gets right with loss below the threshold, and the loss."""
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(mlp(x), y, reduction="none")
    keep = torch.ones_like(y, dtype=torch.bool) if loss_threshold is None else \
        loss < loss_threshold
    return keep, loss


def _qdg_checkpoint(mlp, step: int, x, y, sub, settings: dict) -> tuple[dict, dict]:
    """QDG at one checkpoint: the JSON row and the arrays (labels by K, true subtasks)."""
    s = settings
    keep, loss = _kept_samples(mlp, x, y, s["loss_threshold"])
    true = sub[keep].numpy()
    counts = np.bincount(true, minlength=s["n_tasks"]) if true.size else np.zeros(1, int)
    n_present = int((counts >= 3).sum())
    row = {"step": int(step), "n_kept": int(keep.sum()), "mean_loss": float(loss.mean()),
           "n_subtasks_present": n_present}
    kks = _cluster_counts(s["ks"], n_present)
    if n_present < 2:
        return {**row, "ari": None, "nmi": None, "skipped": f"{n_present} subtask(s) with 3 "
                "or more kept samples: nothing to tell apart"}, {}
    if row["n_kept"] <= max(kks):
        return {**row, "ari": None, "nmi": None, "skipped":
                f"{row['n_kept']} samples kept, need more than K={max(kks)}"}, {}
    # each checkpoint has its own stream: its numbers do not depend on the others asked
    crng = np.random.default_rng([int(s["seed"]), int(step)])
    yk = y[keep].numpy()
    g = _gradients(mlp, x[keep], y[keep], s["project_dim"], s["seed"])
    labels, sizes, affinity = _cluster(g, kks, n_init=s["n_init"],
                                       seed=int(crng.integers(2**31)))
    k_eval = min(kks, key=lambda k: (abs(k - n_present), k))
    ari, nmi = _scores(true, labels)
    am = margin_affinity(affinity, yk)
    margin, _, _ = _cluster(am, kks, n_init=s["n_init"], seed=int(crng.integers(2**31)),
                            affinity="precomputed")
    ari_margin, nmi_margin = _scores(true, margin)
    est = estimate_all(sizes, estimators=s["estimators"], k=k_eval, bootstrap=s["bootstrap"],
                       seed=int(crng.integers(2**31)), labels_by_k=labels)
    row.update(ks=kks, k_eval=k_eval, ari=ari[k_eval], nmi=nmi[k_eval], ari_by_k=ari,
               nmi_by_k=nmi, ari_subtask_label_by_k=_scores(true * 2 + yk, labels)[0],
               ari_margin_by_k=ari_margin, nmi_margin_by_k=nmi_margin,
               margin_contrast=subtask_contrast(am, true),
               found_subtasks=sorted(matched_subtasks(labels[k_eval], true)),
               found_subtasks_margin=sorted(matched_subtasks(margin[k_eval], true)),
               estimators={n: e.to_dict() for n, e in est.items()},
               alpha_kept=alpha_kept(true),
               sizes={**{str(k): v for k, v in sizes.items()}, "true": cluster_sizes(true)})
    if s["calibration"] is not None:
        row["calibrated"] = calibrated_alpha(sizes, labels, s["calibration"],
                                             bootstrap=s["bootstrap"],
                                             seed=int(crng.integers(2**31)),
                                             alpha_true=s["alpha_true"])
    arrays = {f"step{step}_subtask": true.astype(np.int16), f"step{step}_y": yk.astype(np.int8),
              **{f"step{step}_k{k}": v.astype(np.int16) for k, v in labels.items()}}
    return row, arrays


def _order(first_found: dict) -> dict | None:
    """Whether subtasks got a matching cluster in order of frequency: Spearman ρ of subtask
    index against the first step it was found (None with fewer than 3 found, or all found at
    one checkpoint)."""
    if len(first_found) < 3 or len(set(first_found.values())) < 2:
        return None
    s_idx = np.array(sorted(first_found))
    rho = stats.spearmanr(s_idx, [first_found[s] for s in s_idx]).statistic
    return {"spearman_rho": float(rho),
            "first_found": {int(s): int(first_found[s]) for s in s_idx}}


def _network_index(run, network: int | None) -> int:
    infos = run.info()
    if network is None:
        return max(infos, key=lambda r: (r["width"], -r["index"]))["index"]
    if not 0 <= network < len(infos):
        raise InputError(f"network must be in 0..{len(infos) - 1}, got {network}")
    return int(network)


def parity_qdg(run_dir, *, checkpoints="last", network: int | None = None,
               n_samples: int = 5000, ks: Sequence[int] | None = None,
               loss_threshold: float | None = 0.1, project_dim: int | None = None, seed=0,
               n_init: int = 3, estimators: Sequence[str] = ESTIMATORS,
               bootstrap: int = 100, subtasks: str = "all", calibration: dict | None = None,
               return_labels: bool = False):
    """QDG at each checkpoint of one network of a parity run; JSON-ready dict (and, with
    ``return_labels``, a dict of arrays: each checkpoint's cluster labels by K and the kept
    samples' true subtasks and labels, for an npz).

    ``subtasks``: "all" (samples from the whole Zipfian distribution) or "learned" (only
    from the subtasks the network has learned by the last chosen checkpoint, loss below
    ``loss_threshold`` or 0.1 nats in the run's metrics; ``sampled_subtasks`` lists them).
    ``ks``: cluster counts (default: ½×, 1× and 2× the number of subtasks with at least 3
    kept samples, at least 3). ``ari``/``nmi`` per checkpoint are taken at the K nearest that
    number of subtasks (``k_eval``; all K under ``ari_by_k``/``nmi_by_k``). ``alpha_true`` is
    the α the data was generated with; ``alpha_kept`` the Zipf-MLE α of the kept samples'
    true subtask counts (what a perfect clustering would give; null with fewer than 3
    kept subtasks, see :func:`alpha_kept`). ``calibration`` (:func:`load_calibration`) adds
    ``calibrated`` (:func:`calibrated_alpha`). ``order`` reports whether
    subtasks got a matching cluster in order of frequency (Spearman ρ of subtask index
    against the first step it was found). ``ari_subtask_label_by_k`` scores the clusters
    against (subtask, label) pairs: the loss gradient of a correct sample changes sign with
    its label, so a subtask's two labels fall on opposite sides of the affinity.
    ``ari_margin_by_k``/``nmi_margin_by_k``/``found_subtasks_margin``: the same clustering of
    the label-free margin gradients (:func:`margin_affinity`), and ``margin_contrast`` their
    mean cosine within and across subtasks (:func:`subtask_contrast`).
    """
    from empirical.parity import load_run
    run = load_run(run_dir)
    if n_samples < 2:
        raise InputError(f"n_samples must be at least 2, got {n_samples}")
    if subtasks not in ("all", "learned"):
        raise InputError(f"subtasks must be 'all' or 'learned', got {subtasks!r}")
    network = _network_index(run, network)
    steps = _steps(run, checkpoints)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    chosen = None
    if subtasks == "learned":
        chosen = learned_subtasks(run, network, steps[-1], loss_threshold or 0.1)
        if chosen.size < 2:
            raise InputError(f"network {network} has learned {chosen.size} subtask(s) by step "
                             f"{steps[-1]}: nothing to tell apart")
    x, y, sub = _draw_samples(run.task, n_samples, gen, chosen)
    settings = dict(loss_threshold=loss_threshold, n_tasks=run.task.n_tasks, ks=ks,
                    seed=seed, project_dim=project_dim, n_init=n_init, estimators=estimators,
                    bootstrap=bootstrap, calibration=calibration, alpha_true=run.task.alpha)
    rows, arrays, first_found = [], {}, {}
    for step in steps:
        _, mlp = run.network(network, step)
        row, arr = _qdg_checkpoint(mlp, step, x, y, sub, settings)
        rows.append(row)
        arrays.update(arr)
        for s_found in row.get("found_subtasks", []):
            first_found.setdefault(s_found, step)
    info = run.info()[network]
    res = {"run_dir": str(run_dir), "network": network, "width": int(info["width"]),
           "alpha_true": float(run.task.alpha), "n_tasks": run.task.n_tasks,
           "n_samples": int(n_samples), "subtasks": subtasks,
           "sampled_subtasks": None if chosen is None else chosen.tolist(),
           "loss_threshold": loss_threshold, "project_dim": project_dim, "seed": seed,
           "checkpoints": rows, "order": _order(first_found)}
    return (res, arrays) if return_labels else res


def parity_qdg_networks(run_dir, networks="widest:3", **options):
    """:func:`parity_qdg` for each network ``networks`` names (``select_networks``: "all",
    "widest:K", widths): ``{"run_dir", "networks": [one result each]}`` (and the arrays of
    each under ``"net<index>_"``, with ``return_labels``)."""
    from empirical.parity import load_run
    from empirical.parity.run import select_networks

    indices = select_networks(load_run(run_dir).info(), networks)
    results, arrays = [], {}
    for i in indices:
        out = parity_qdg(run_dir, network=i, **options)
        if options.get("return_labels"):
            out, arr = out
            arrays.update({f"net{i}_{k}": v for k, v in arr.items()})
        results.append(out)
    res = {"run_dir": str(run_dir), "networks": results}
    return (res, arrays) if options.get("return_labels") else res


def plot_scores_by_width(results: list[dict], ax=None):
    """ARI and NMI of the clusters against the true subtasks (and ARI against (subtask,
    label) pairs and of the margin gradients) at each network's last clustered checkpoint,
    against its width."""
    from common.plotting import axes

    ax = axes(ax)
    rows = [(r["width"], _last_clustered(r)) for r in results]
    rows = sorted((w, c) for w, c in rows if c is not None)
    w = [r[0] for r in rows]
    series = [("ARI vs subtasks", lambda c: c["ari"], "C0-o"),
              ("NMI vs subtasks", lambda c: c["nmi"], "C1-s"),
              ("ARI vs (subtask, label)", lambda c: _at_k(c["ari_subtask_label_by_k"],
                                                          c["k_eval"]), "C2-^"),
              ("ARI, margin gradients", lambda c: _at_k(c["ari_margin_by_k"], c["k_eval"]),
               "C3-v")]
    for label, get, fmt in series:
        ax.plot(w, [get(c) for _, c in rows], fmt, label=label)
    ax.set(xlabel="network width", ylabel="agreement with the true subtasks",
           title="QDG clusters vs subtasks", ylim=(-0.05, 1.0))
    ax.legend(fontsize=7)
    return ax


def plot_alpha_by_width(results: list[dict], ax=None):
    """α from the cluster sizes (raw and calibrated, with intervals) at each network's last
    clustered checkpoint, beside the data's α and what an exact clustering would give."""
    from common.plotting import axes

    ax = axes(ax)
    rows = sorted((r["width"], _last_clustered(r)) for r in results
                  if _last_clustered(r) is not None)
    for j, (w, c) in enumerate(rows):
        cal = c.get("calibrated")
        if cal is None:
            continue
        for key, ci, dx, col, label in (("alpha_raw", "ci_raw", -4, "C0", "α̂ raw"),
                                        ("alpha_calibrated", "ci_calibrated", 4, "C1",
                                         "α̂ calibrated (toy study)")):
            v, (lo, hi) = cal[key], cal[ci]
            ax.errorbar(w + dx, v, yerr=[[v - lo], [hi - v]], fmt="o", color=col, capsize=3,
                        label=f"{label}, {cal['estimator']} K={cal['k']}" if j == 0 else None)
        if c.get("alpha_kept") is not None:
            ax.plot(w, c["alpha_kept"], "kx", label="exact clustering (true subtask counts)"
                    if j == 0 else None)
    ax.axhline(results[0]["alpha_true"], color="r", ls="--", label="α of the data")
    ax.set(xlabel="network width", ylabel="α", title="α from QDG cluster sizes")
    ax.legend(fontsize=7)
    return ax


def _at_k(by_k: dict, k):
    """A by-K score, keys ints in memory and strings after JSON."""
    return by_k[k] if k in by_k else by_k[str(k)]


def _last_clustered(result: dict) -> dict | None:
    clustered = [c for c in result["checkpoints"] if c.get("ari") is not None]
    return clustered[-1] if clustered else None
