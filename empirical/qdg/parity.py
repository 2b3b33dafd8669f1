"""QDG on multitask sparse parity, where the true quanta (the subtasks) are known.

For a network of a parity run (default: the widest) at each chosen checkpoint: draw
``n_samples`` inputs from the task's Zipfian subtask distribution (the same inputs at every
checkpoint), keep those the network gets right with loss below ``loss_threshold`` (nats; the
paper keeps low-loss samples), compute their per-sample gradients (exactly, in factored form: the MLP is all
``nn.Linear``; or vmap'ed and randomly projected with ``project_dim``), cluster them (QDG) and
compare the clusters with the subtask labels (ARI, NMI), the estimated α with the α of the
data, and record which subtasks have a matching cluster (best Jaccard overlap ≥ 0.5).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from common.errors import InputError
from empirical import PARITY_RESULTS
from fit.sizes import ZIPF_MLE_MAX, zipf_mle

from .clustering import QDGClustering, cluster_sizes
from .estimators import ESTIMATORS, estimate_all
from .gradients import linear_gradient_factors, log_cross_entropy_loss, per_sample_gradients

#: a subtask counts as found when some cluster overlaps it with Jaccard index ≥ this
MATCH_JACCARD = 0.5


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


def parity_qdg(run_dir, *, checkpoints="last", network: int | None = None,
               n_samples: int = 5000, ks: Sequence[int] | None = None,
               loss_threshold: float | None = 0.1, project_dim: int | None = None, seed=0,
               n_init: int = 3, estimators: Sequence[str] = ESTIMATORS,
               bootstrap: int = 100) -> dict:
    """QDG at each checkpoint of one network of a parity run; JSON-ready dict.

    ``ks``: cluster counts (default: ½×, 1× and 2× the number of subtasks with at least 3
    kept samples, at least 3). ``ari``/``nmi`` per checkpoint are taken at the K nearest that
    number of subtasks (``k_eval``; all K under ``ari_by_k``/``nmi_by_k``). ``alpha_true`` is
    the α the data was generated with; ``alpha_kept`` the Zipf-MLE α of the kept samples'
    true subtask counts (what a perfect clustering would give; null with fewer than 3
    kept subtasks, see :func:`alpha_kept`). ``order`` reports whether
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
    task = run.task
    if n_samples < 2:
        raise InputError(f"n_samples must be at least 2, got {n_samples}")
    infos = run.info()
    if network is None:
        network = max(infos, key=lambda r: (r["width"], -r["index"]))["index"]
    if not 0 <= network < len(infos):
        raise InputError(f"network must be in 0..{len(infos) - 1}, got {network}")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    x, y, sub = task.sample(int(n_samples), gen)
    rows, first_found = [], {}
    for step in _steps(run, checkpoints):
        _, mlp = run.networks(step)[network]
        with torch.no_grad():
            loss = torch.nn.functional.cross_entropy(mlp(x), y, reduction="none")
        keep = torch.ones_like(y, dtype=torch.bool) if loss_threshold is None else \
            loss < loss_threshold
        keep_np = keep.numpy()
        true = sub[keep].numpy()
        counts = np.bincount(true, minlength=task.n_tasks) if true.size else np.zeros(1, int)
        n_present = int((counts >= 3).sum())
        row = {"step": int(step), "n_kept": int(keep_np.sum()),
               "mean_loss": float(loss.mean()), "n_subtasks_present": n_present}
        if n_present < 2:
            rows.append({**row, "ari": None, "nmi": None, "skipped":
                         f"{n_present} subtask(s) with 3 or more kept samples: nothing to "
                         "tell apart"})
            continue
        # each checkpoint has its own stream: its numbers do not depend on the others asked
        crng = np.random.default_rng([int(seed), int(step)])
        kks = sorted({max(3, n_present // 2), max(3, n_present), 2 * n_present}) if ks is None \
            else sorted(int(k) for k in ks)
        if keep_np.sum() <= max(kks):
            rows.append({**row, "ari": None, "nmi": None, "skipped":
                         f"{int(keep_np.sum())} samples kept, need more than K={max(kks)}"})
            continue
        # directions of ∇log L_i (those of ∇L_i at O(1) size: long-trained networks are
        # confident enough for ∇L_i to underflow)
        if project_dim is None:      # exact cosines from factored linear-layer gradients
            g = linear_gradient_factors(mlp, x[keep], y[keep], loss_fn=log_cross_entropy_loss)
        else:
            g = per_sample_gradients(mlp, x[keep], y[keep], project_dim=project_dim, seed=seed,
                                     loss_fn=log_cross_entropy_loss)
        model = QDGClustering(kks, n_init=n_init, random_state=int(crng.integers(2**31))).fit(g)
        k_eval = min(kks, key=lambda k: (abs(k - n_present), k))
        ari = {k: adjusted_rand_score(true, v) for k, v in model.labels_by_k_.items()}
        nmi = {k: normalized_mutual_info_score(true, v) for k, v in model.labels_by_k_.items()}
        pairs = true * 2 + y[keep].numpy()          # (subtask, label): the gradient's sign
        ari_pairs = {k: adjusted_rand_score(pairs, v) for k, v in model.labels_by_k_.items()}
        yk = y[keep].numpy()
        am = margin_affinity(model.affinity_, yk)
        margin = QDGClustering(kks, affinity="precomputed", n_init=n_init,
                               random_state=int(crng.integers(2**31))).fit(am)
        ari_margin = {k: adjusted_rand_score(true, v) for k, v in margin.labels_by_k_.items()}
        found = matched_subtasks(model.labels_by_k_[k_eval], true)
        for s in found:
            first_found.setdefault(s, step)
        est = estimate_all(model.cluster_sizes_, estimators=estimators, k=k_eval,
                           bootstrap=bootstrap, seed=int(crng.integers(2**31)),
                           labels_by_k=model.labels_by_k_)
        sizes = {str(k): v for k, v in model.cluster_sizes_.items()}
        sizes["true"] = cluster_sizes(true)
        rows.append({**row, "ks": kks, "k_eval": k_eval, "ari": ari[k_eval], "nmi": nmi[k_eval],
                     "ari_by_k": ari, "nmi_by_k": nmi,
                     "ari_subtask_label_by_k": ari_pairs, "ari_margin_by_k": ari_margin,
                     "nmi_margin_by_k": {k: normalized_mutual_info_score(true, v)
                                         for k, v in margin.labels_by_k_.items()},
                     "margin_contrast": subtask_contrast(am, true),
                     "found_subtasks": sorted(found),
                     "found_subtasks_margin": sorted(matched_subtasks(
                         margin.labels_by_k_[k_eval], true)),
                     "estimators": {n: e.to_dict() for n, e in est.items()},
                     "alpha_kept": alpha_kept(true), "sizes": sizes})
    order = None
    if len(first_found) >= 3:
        s_idx = np.array(sorted(first_found))
        rho = stats.spearmanr(s_idx, [first_found[s] for s in s_idx]).statistic
        order = {"spearman_rho": float(rho), "first_found": {int(s): int(first_found[s])
                                                              for s in s_idx}}
    return {"run_dir": str(run_dir), "network": int(network),
            "width": int(infos[network]["width"]), "alpha_true": float(task.alpha),
            "n_tasks": task.n_tasks, "n_samples": int(n_samples),
            "loss_threshold": loss_threshold, "project_dim": project_dim, "seed": seed,
            "checkpoints": rows, "order": order}
