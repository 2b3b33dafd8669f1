"""From the streamed totals to a :class:`TokenAnalysis`, and its text and JSON forms."""
from __future__ import annotations

import numpy as np

from common.errors import InputError
from fit.tokens import estimates as est
from fit.tokens.curves import CLASSES
from fit.tokens.result import ESTIMATES, TokenAnalysis
from fit.tokens.stream import HIST_BINS


def build(matrix, axis, x, opts, unit, first, totals, cal, settings) -> TokenAnalysis:
    """Point estimates from the totals, intervals from the Poisson bootstrap."""
    from fit.tokens.analysis import fit_interval, fit_mean_loss

    L, groups = totals.layout, totals.groups
    full = groups.sum(0)
    notes: list[str] = []
    boot, n_empty = _resamples(groups, L, opts, unit, notes)
    count, count_b = full[L.count], boot[:, [L.count]]
    mean, mean_b = full[L.losses] / count, boot[:, L.losses] / count_b
    fits = {f: fit_mean_loss(x, mean, f, opts.fit_bootstrap, opts.seed, opts.level)
            for f in ("power", "offset")}
    values, samples = {}, {}
    values["exponent_power"] = fits["power"].params["alpha"]
    samples["exponent_power"] = est.power_exponents(x, mean_b)
    values["exponent_offset"] = fits["offset"].params["alpha"]
    samples["exponent_offset"] = est.offset_exponents(x, mean_b, fits["offset"].theta)
    gaps, gaps_b = full[L.sharp], boot[:, L.sharp]
    values["exponent_drops"] = float(est.drop_exponents(x, gaps)[0])
    samples["exponent_drops"] = est.drop_exponents(x, gaps_b)
    above, above_b = 1.0 - full[L.below] / count, 1.0 - boot[:, L.below] / count_b
    values["exponent_fraction"], samples["exponent_fraction"] = _fraction_exponent(
        x, above, above_b, notes)
    for name in ("power", "offset", "drops", "fraction"):
        values[f"alpha_{name}"] = est.to_alpha(values[f"exponent_{name}"], axis)
        samples[f"alpha_{name}"] = est.to_alpha(samples[f"exponent_{name}"], axis)
    _monogenic(x, full, boot, L, values, samples)
    values["alpha_gap"] = values["alpha_drops"] - values["alpha_offset"]
    samples["alpha_gap"] = samples["alpha_drops"] - samples["alpha_offset"]
    fit_ci = {f"exponent_{f}": fit_interval(fits[f], "alpha", opts.level) for f in fits}
    notes += [f"mean-loss fit ({f}): {w}" for f, r in fits.items() for w in r.warnings]
    notes += _checks(values, gaps, full, L, cal, matrix, unit, first)
    notes += _failed_draws(values, samples, len(boot))
    n_docs = None if first.documents is None else int(first.documents.size)
    result = TokenAnalysis(
        axis=axis, x=np.asarray(x, float), n_tokens=first.n_tokens, n_documents=n_docs,
        unit=unit, mean_loss=mean, mean_loss_boot=mean_b,
        estimates={k: float(values[k]) for k in ESTIMATES}, bootstrap=samples,
        fit_intervals=fit_ci, fits=fits,
        classification=_classification(full, L, cal, settings),
        drops=_drops(x, gaps, values), distribution=_distribution(x, totals, above, values,
                                                                  settings),
        emergence=_emergence(x, totals, first, values, axis), examples=_examples(totals),
        heatmap=_heatmap(totals), truth=None, warnings=notes, n_failed_bootstrap=n_empty,
        config={**{k: v for k, v in vars(opts).items()}, "source": matrix.name,
                "floor": settings.floor, "threshold": settings.threshold},
        level=opts.level)
    result.truth = _truth(result, matrix, totals)
    return result


def _resamples(groups, L, opts, unit: str, notes: list) -> tuple[np.ndarray, int]:
    """The Poisson bootstrap's totals, less the draws that weight every unit 0: such a
    resample holds no token (its mean is 0/0), so it is dropped and counted (warned above
    5 %). Fewer than two units cannot give an interval at all: refused."""
    units = int(np.count_nonzero(groups[:, L.count]))
    if units < 2:
        raise InputError(f"only {units} {unit} group to resample: a bootstrap over {unit}s "
                         "needs at least 2 (give the document ids of several documents, or "
                         "resample tokens: unit='token', --unit token)")
    boot = est.poisson_totals(groups, opts.bootstrap, opts.seed)
    empty = boot[:, L.count] == 0
    n_empty = int(empty.sum())
    if n_empty > 0.05 * opts.bootstrap:
        notes.append(f"{n_empty} of {opts.bootstrap} bootstrap resamples drew none of the "
                     f"{units} {unit} groups (every Poisson weight 0) and were dropped; "
                     "the intervals rest on the rest, and so few units make them rough")
    return boot[~empty], n_empty


def _failed_draws(values, samples, n: int) -> list[str]:
    """Estimates whose bootstrap refits failed (non-finite) in over 5 % of the resamples."""
    out = []
    for k in ESTIMATES:
        bad = int(np.count_nonzero(~np.isfinite(samples[k])))
        if np.isfinite(values[k]) and bad > 0.05 * n:
            out.append(f"{k}: {bad} of {n} bootstrap refits failed; its interval describes "
                       "the rest")
    return out


def _fraction_exponent(x, above, above_b, notes):
    """Offset-form exponent of the fraction of tokens above the threshold."""
    from fit.tokens.analysis import fit_mean_loss

    if np.any(above <= 0) or np.ptp(above) == 0:
        notes.append("the fraction above threshold is 0 or constant: no exponent from it")
        return np.nan, np.full(len(above_b), np.nan)
    try:
        res = fit_mean_loss(x, above, "offset", 0, 0, 0.95)
    except InputError as err:
        notes.append(f"fraction above threshold: {err}")
        return np.nan, np.full(len(above_b), np.nan)
    return res.params["alpha"], est.offset_exponents(x, above_b, res.theta)


def _monogenic(x, full, boot, L, values, samples) -> None:
    """Shares of sharp tokens: observed, corrected for drops past the last column, of all."""
    for name, tot in (("", full[None, :]), ("boot", boot)):
        sharp = tot[:, L.sharp].sum(1)
        gradual = tot[:, L.gradual]
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = sharp / (sharp + gradual)
            expo = (np.atleast_1d(values["exponent_drops"]) if not name
                    else samples["exponent_drops"])
            scaled = sharp / est.share_inside(x, expo)
            corrected = scaled / (scaled + gradual)
            share = sharp / tot[:, L.count]
        for key, v in (("monogenic_fraction_observed", observed),
                       ("monogenic_fraction", corrected), ("sharp_fraction", share)):
            if name:
                samples[key] = v
            else:
                values[key] = float(v[0])


def _checks(values, gaps, full, L, cal, matrix, unit, first) -> list[str]:
    """What limits the reading, flagged in the output."""
    out = []
    if gaps.sum() < 30:
        out.append(f"only {int(gaps.sum())} sharp drops: the drop exponent is poorly determined")
    if gaps.sum() and cal.false_alarm * full[L.count] > 0.2 * gaps.sum():
        out.append(f"false alarms (~{cal.false_alarm:.1%} of step-free curves) may be over "
                   "20% of the sharp tokens")
    if unit == "token" and "document" not in matrix.metadata_names:
        out.append("no document ids: the bootstrap resamples tokens, which are not "
                   "independent within a document; intervals may be too narrow")
    if first.documents is not None and unit == "document" and first.documents.size < 30:
        out.append(f"only {first.documents.size} documents: the bootstrap over them is rough")
    for k in ("exponent_drops", "exponent_offset"):
        if not np.isfinite(values[k]):
            out.append(f"{k}: not determined")
    return out


def _classification(full, L, cal, s) -> dict:
    sharp, gradual = float(full[L.sharp].sum()), float(full[L.gradual])
    n = float(full[L.count])
    return {"counts": {"flat": n - sharp - gradual, "sharp": sharp, "gradual": gradual},
            "calibration": cal.to_dict(), "floor": s.floor, "min_log_drop": s.min_log_drop,
            "smooth": s.design.smooth}


def _drops(x, gaps, values) -> dict:
    """Where the sharp tokens drop (gap j: between columns j and j+1) and what each
    exponent predicts for the counts."""
    n = gaps.sum()
    pred = {}
    for k in ("exponent_drops", "exponent_offset", "exponent_power"):
        e = values[k]
        pred[k] = (n * est.drop_probabilities(x, e)[0]).tolist() if np.isfinite(e) else None
    return {"counts": gaps.tolist(), "lower": list(x[:-1]), "upper": list(x[1:]),
            "expected": pred}


def _distribution(x, totals, above, values, s) -> dict:
    """Histograms of per-token losses per column, and the fraction below the threshold
    with what the mean loss's exponent predicts for it (E + A·x^-e, E and A by least
    squares)."""
    e = values["exponent_offset"] if np.isfinite(values["exponent_offset"]) \
        else values["exponent_power"]
    design = np.column_stack([np.ones_like(x), x ** -e]) if np.isfinite(e) else None
    predicted = None
    if design is not None:
        coef, *_ = np.linalg.lstsq(design, above, rcond=None)
        predicted = (1.0 - design @ coef).tolist()
    return {"edges": totals.edges.tolist(), "counts": totals.hist[:, 1:HIST_BINS + 1].tolist(),
            "underflow": totals.hist[:, 0].tolist(), "overflow": totals.hist[:, -1].tolist(),
            "threshold": s.threshold, "fraction_below": (1.0 - above).tolist(),
            "predicted_fraction_below": predicted}


def _emergence(x, totals, first, values, axis) -> dict:
    """Threshold emergence per column, and the learning order of sharp tokens against
    their frequency proxy: frequency ∝ x_emerge^-b, b = α + 1 (sizes) or 1 (steps)."""
    from scipy import stats

    m = len(x)
    out = {"counts": totals.emergence[:m].tolist(), "never": int(totals.emergence[m]),
           "order": None}
    rows = totals.samples.get("order") or {}
    if not rows or len(rows.get("column", [])) < 10:
        return out
    freq = np.asarray(rows["proxy"], float)
    if first.token_counts is not None:       # ids → their share of the tokens
        ids, counts = first.token_counts
        freq = counts[np.searchsorted(ids, rows["proxy"])] / first.n_tokens
    xe = x[rows["column"]]
    rho = stats.spearmanr(xe, freq).statistic
    cols = np.unique(rows["column"])
    gm = np.array([np.exp(np.mean(np.log(freq[rows["column"] == c]))) for c in cols])
    b = -np.polyfit(np.log(x[cols]), np.log(gm), 1)[0] if cols.size >= 2 else np.nan
    alpha = values["alpha_drops"]
    out["order"] = {"n": int(xe.size), "spearman": float(rho), "exponent": float(b),
                    "predicted_exponent": 1.0 if axis == "steps" else float(alpha + 1),
                    "columns": x[cols].tolist(), "mean_frequency": gm.tolist()}
    return out


def _examples(totals) -> dict:
    return {k: {kk: np.asarray(vv).tolist() for kk, vv in totals.samples[k].items()}
            for k in CLASSES if k in totals.samples}


def _heatmap(totals) -> dict:
    rows = totals.samples.get("heatmap") or {}
    if not rows:
        return {"index": [], "losses": [], "column": []}
    order = np.argsort(rows["column"], kind="stable")
    return {k: np.asarray(v)[order].tolist() for k, v in rows.items()}


def _truth(result, matrix, totals) -> dict | None:
    """The generator's truth beside the estimates (files written by ``simulate.tokens``)."""
    cfg = matrix.extras.get("generator_config")
    if cfg is None or totals.truth is None:
        return None
    conf = totals.truth["confusion"]
    inside, hit, placed = (int(v) for v in totals.truth["gap_hits"])
    ci = result.conf_int(1 - result.level)
    agree = {}
    # the estimates the model equates with its parameters (a pure power law ignores the
    # loss floor; the fraction above threshold follows α only for monogenic tokens)
    for k, truth in (("alpha_offset", cfg["alpha"]), ("alpha_drops", cfg["alpha"]),
                     ("monogenic_fraction", cfg["monogenic"])):
        lo, hi = ci.loc[k, "lower"], ci.loc[k, "upper"]
        agree[k] = {"truth": truth, "estimate": result.estimates[k],
                    "inside": bool(lo <= truth <= hi)}
    return {"alpha": cfg["alpha"], "monogenic": cfg["monogenic"],
            "confusion": {kind: dict(zip(CLASSES, map(int, conf[i])))
                          for i, kind in enumerate(("flat", "monogenic", "polygenic"))},
            "monogenic_in_range": inside, "recall": hit / inside if inside else None,
            "gap_accuracy": placed / hit if hit else None,
            "polygenic_called_sharp": float(conf[2, 1] / max(conf[2].sum(), 1)),
            "agreement": agree, "generator_config": cfg}


def as_dict(r: TokenAnalysis) -> dict:
    """The JSON form (keys documented in docs/tokens.md)."""
    ci = r.conf_int(1 - r.level)
    est_out = {k: {"value": r.estimates[k], "ci": [ci.loc[k, "lower"], ci.loc[k, "upper"]],
                   "ci_columns": list(r.fit_intervals[k]) if k in r.fit_intervals else None,
                   "what": ESTIMATES[k], "n_failed": r.n_failed(k)} for k in ESTIMATES}
    return {"axis": r.axis, "x": r.x.tolist(), "n_tokens": r.n_tokens,
            "n_documents": r.n_documents, "unit": r.unit, "level": r.level,
            "n_bootstrap": len(r.mean_loss_boot), "n_failed_bootstrap": r.n_failed_bootstrap,
            "mean_loss": r.mean_loss.tolist(), "mean_loss_ci": r.mean_loss_interval().tolist(),
            "estimates": est_out, "mean_loss_fits": {f: {"params": res.params,
                                                         "aic": res.aic, "bic": res.bic}
                                                     for f, res in r.fits.items()},
            "classification": r.classification, "drops": r.drops,
            "distribution": r.distribution, "emergence": r.emergence,
            "examples": r.examples, "heatmap": r.heatmap, "truth": r.truth,
            "warnings": list(r.warnings), "config": r.config}


def summary_text(r: TokenAnalysis) -> str:
    """The text report: estimates with intervals, classification, truth when known."""
    ci = r.conf_int(1 - r.level)
    what = "model sizes N" if r.axis == "sizes" else "checkpoint steps S"
    docs = "" if r.n_documents is None else f", {r.n_documents} documents"
    lines = [f"Per-token losses: {r.n_tokens} tokens{docs} × {len(r.x)} {what} "
             f"({r.x[0]:.3g} … {r.x[-1]:.3g})",
             f"mean loss: {r.mean_loss[0]:.4g} → {r.mean_loss[-1]:.4g}; intervals: "
             f"{r.level:.0%} bootstrap over {r.unit}s ({len(r.mean_loss_boot)} resamples"
             + (f", {r.n_failed_bootstrap} empty ones dropped" if r.n_failed_bootstrap else "")
             + ")"
             + "; [cols]: fit.fit's bootstrap over the columns", ""]
    head = f"{'estimate':<30} {'value':>9} {'interval':>21} {'[cols]':>21}"
    lines += [head, "-" * len(head)]
    for k in ESTIMATES:
        lo, hi = ci.loc[k, "lower"], ci.loc[k, "upper"]
        cols = r.fit_intervals.get(k)
        cols_txt = f"[{cols[0]:.4g}, {cols[1]:.4g}]" if cols else ""
        lines.append(f"{k:<30} {r.estimates[k]:9.4g} {f'[{lo:.4g}, {hi:.4g}]':>21} "
                     f"{cols_txt:>21}")
    c, cal = r.classification["counts"], r.classification["calibration"]
    lines += ["", f"curves: {int(c['sharp'])} sharp, {int(c['gradual'])} gradual, "
                  f"{int(c['flat'])} flat; ΔBIC threshold {cal['threshold']:.3g} → "
                  f"false-alarm rate {cal['false_alarm']:.2%} ± {cal['false_alarm_se']:.2%} "
                  f"on {cal['n_null']} step-free curves"]
    order = r.emergence.get("order")
    if order:
        lines.append(f"learning order (sharp tokens): Spearman {order['spearman']:.3f} between "
                     f"drop {r.axis[:-1]} and frequency; frequency ∝ x^-b with b = "
                     f"{order['exponent']:.3g} (model: {order['predicted_exponent']:.3g})")
    if r.truth:
        lines += ["", "generator truth:"]
        for k, a in r.truth["agreement"].items():
            lines.append(f"  {k:<28} truth {a['truth']:.4g}  estimate {a['estimate']:.4g}  "
                         f"{'inside' if a['inside'] else 'OUTSIDE'} the interval")
        if r.truth["recall"] is not None:
            lines.append(f"  monogenic tokens dropping inside the columns called sharp: "
                         f"{r.truth['recall']:.1%}; in their true gap: "
                         f"{r.truth['gap_accuracy']:.1%}; polygenic called sharp: "
                         f"{r.truth['polygenic_called_sharp']:.2%}")
    lines += [f"warning: {w}" for w in r.warnings]
    return "\n".join(lines)
