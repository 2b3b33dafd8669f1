"""A fit's text report and JSON document (``FitResult.summary`` and ``.to_dict``).

The table is laid out from the formatted cells, so columns line up whatever the magnitudes
(a prefactor of 1e78 beside an exponent of 0.3), and an interval is one cell, ``[lo, hi]``.
"""
from __future__ import annotations

from common.results import jsonable

#: what marks an interval an ill-conditioned design makes unreliable, and its footnote
UNRELIABLE = " *"
UNRELIABLE_NOTE = ("* unreliable however narrow: the data barely determine this quantity "
                   "(an ill-conditioned design; see the warning)")


def table(header: list[str], rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:
    """Lines of a text table: each column as wide as its widest cell, the columns in
    ``right`` right-aligned, a rule under the header."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def _num(v, digits=6) -> str:
    return f"{v:.{digits}g}"


def _interval(lo, hi, digits=6) -> str:
    return f"[{lo:.{digits}g}, {hi:.{digits}g}]"


def _head(res) -> list[str]:
    from fit.result import FORMULAS

    lines = [f"Scaling-law fit: {res.form}    {FORMULAS[res.form]}",
             f"points: {res.n_points}   loss: {res.loss}"
             + (f" (delta={res.config.get('delta')})" if res.loss == "huber" else "")
             + f"   objective: {res.objective:.6g}   converged: {res.converged}",
             f"AIC: {res.aic:.4f}   BIC: {res.bic:.4f}   log-likelihood: {res.llf:.4f}"
             "   (Gaussian, log residuals)"]
    if res.selection:
        lines.append(f"rows: {selection_text(res.selection)}")
    if res.constraints:
        lines.append(f"constraints: {res.constraints}")
    if res.bootstrap_params is not None:
        share = res.n_failed_bootstrap / max(res.n_bootstrap, 1)
        lines.append(f"bootstrap: {res.n_bootstrap} {res.config.get('bootstrap_method')} "
                     f"resamples, {res.n_failed_bootstrap} failed refits ({share:.1%}, left "
                     f"out of the intervals), {res.ci_method} intervals, seed "
                     f"{res.config.get('seed')}")
    return lines


def _param_rows(res, unreliable) -> tuple[list[str], list[list[str]]]:
    level = res.level
    ci, wald, bse = res._bounds(level), res._wald_bounds(level), res.bootstrap_stderr()
    header = ["param", "value", "std err", "boot se", f"{level:.0%} CI ({res.interval_method})",
              f"{level:.0%} CI (fit SE)"]
    rows = []
    for k, v in res.params.items():
        mark = UNRELIABLE if k in unreliable else ""
        rows.append([k, _num(v), _num(res.stderr[k], 4), _num(bse[k], 4) if bse else "-",
                     _interval(*ci[k]) + mark if k in ci else "-",
                     _interval(*wald[k], 4) + mark])
    return header, rows


def _derived_lines(res, unreliable) -> list[str]:
    from fit import derived

    if not derived.functions(res.form):
        return []
    got = derived.rows(res, res.level)
    about = {"N_opt_exponent": "N_opt ∝ C^a, a = beta/(alpha+beta)",
             "D_opt_exponent": "D_opt ∝ C^b, b = alpha/(alpha+beta)",
             "alpha_final": "the exponent past the last break, alpha + sum c_i"}
    rows = [[k, _num(v, 4), _interval(lo, hi, 4) + (UNRELIABLE if k in unreliable else ""),
             about.get(k, "")] for k, (v, lo, hi) in got.items()]
    return [""] + table(["derived", "value", f"{res.level:.0%} CI", "what"], rows, {1})


def selection_text(selection: dict) -> str:
    """The rows a fit used, in words: read, selected by the query, dropped, fitted."""
    rows = selection.get("rows") or {}
    parts = [f"{rows.get('read')} read"]
    if selection.get("where"):
        parts.append(f"{rows.get('selected')} where {selection['where']}")
    if selection.get("group"):
        g = selection["group"]
        parts.append(f"group {g['column']} = {g['value']}")
    if rows.get("dropped_missing"):
        parts.append(f"{rows['dropped_missing']} with a missing value dropped")
    if rows.get("held_out"):
        parts.append(f"{rows['held_out']} held out")
    parts.append(f"{rows.get('fitted', rows.get('used'))} fitted")
    return ", ".join(parts)


def holdout_lines(block: dict) -> list[str]:
    """The held-out points of a ``holdout`` block as a table, and how well they were
    predicted."""
    level = f"{block['level']:.0%}"
    sizes = [block["x"]] + ([block["x2"]] if block.get("x2") is not None else [])
    rows = [[f"{v:.4g}" for v in size] + [f"{o:.6g}", f"{p:.6g}", f"[{lo:.4g}, {hi:.4g}]",
                                          f"{r:+.2%}", "yes" if c else "NO"]
            for *size, o, p, lo, hi, r, c in
            zip(*sizes, *(block[k] for k in ("observed", "predicted", "lower", "upper",
                                            "rel_error", "covered")))]
    head = ["x", "x2"][:len(sizes)] + ["observed", "predicted",
                                        f"{level} band (new observation)", "rel. error",
                                        "covered"]
    right = set(range(len(sizes) + 2)) | {len(sizes) + 3}
    return table(head, rows, right) + [
        f"mean |relative error| {block['mean_abs_rel_error']:.3%}, RMSLE "
        f"{block['rmsle']:.4g}; {sum(block['covered'])} of {len(rows)} held-out points "
        f"inside their {level} band"]


def summary_text(res) -> str:
    """The report ``FitResult.summary`` returns."""
    from fit.checks import unreliable_intervals

    unreliable = unreliable_intervals(res)
    header, rows = _param_rows(res, unreliable)
    lines = _head(res) + [""] + table(header, rows, {1, 2, 3}) + _derived_lines(res, unreliable)
    reading = res.alpha_implied()
    if reading:
        parts = [f"{k}: {v['value']:.4g}" + (f" [{v['ci'][0]:.4g}, {v['ci'][1]:.4g}]"
                                             if v.get("ci") else "")
                 for k, v in reading.items()]
        lines += ["", "quantization model, alpha implied by " + "; ".join(parts)
                  + (UNRELIABLE if "alpha_implied" in unreliable else "")]
    if res.holdout is not None:
        largest = "largest by N·D (compute)" if res.x2 is not None else "largest sizes"
        lines += ["", f"held out: the {len(res.holdout['x'])} {largest}, predicted by "
                      f"this fit of the other {res.holdout['n_train']}"]
        lines += holdout_lines(res.holdout)
    lines += [UNRELIABLE_NOTE] * bool(unreliable) + [f"warning: {w}" for w in res.warnings]
    return "\n".join(lines)


def fit_document(res, include_data: bool = False) -> dict:
    """The JSON document ``FitResult.to_dict`` returns (what ``quanta fit --json`` writes)."""
    from fit import derived
    from fit.checks import unreliable_intervals

    ci = res._bounds(res.level)
    out = {
        "form": res.form,
        "params": {k: float(v) for k, v in res.params.items()},
        "ci": {k: [float(a), float(b)] for k, (a, b) in ci.items()},
        "stderr": {k: float(v) for k, v in res.stderr.items()},
        "bootstrap_stderr": res.bootstrap_stderr(),
        "level": res.level,
        "ci_method": res.interval_method,
        "n_points": res.n_points,
        "aic": res.aic, "bic": res.bic, "llf": res.llf,
        "loss": res.loss,
        "objective": res.objective,
        "converged": res.converged,
        "n_bootstrap": res.n_bootstrap,
        "failed": res.n_failed_bootstrap,
        "n_failed_bootstrap": res.n_failed_bootstrap,
        "draws_on_bound": dict(res.info.get("draws_on_bound") or {}),
        "condition_number": res.info.get("condition_number"),
        "ci_unreliable": unreliable_intervals(res),
        "constraints": res.constraints or None,
        "derived": {k: {"value": v, "ci": [lo, hi]}
                    for k, (v, lo, hi) in derived.rows(res, res.level).items()},
        "alpha_implied": dict(res.alpha_implied()),
        "warnings": list(res.warnings),
        "config": dict(res.config),
    }
    if res.selection:
        out["selection"] = res.selection
    if res.holdout is not None:
        out["holdout"] = res.holdout
    if include_data:
        out["data"] = {"x": res.x.tolist(), "y": res.y.tolist(),
                       "x2": None if res.x2 is None else res.x2.tolist(),
                       "sigma": None if res.sigma is None else res.sigma.tolist()}
    return jsonable(out)


def refit(doc: dict, data: dict | None = None):
    """A fit made again from its JSON document (``FitResult.to_dict(include_data=True)``,
    what ``quanta fit --json`` writes): on ``data`` (name → array: ``x``, ``y``, ``x2``,
    ``sigma``; default the document's ``data`` block) with the settings saved in its
    ``config`` (the same seed: the same bootstrap). Returns the result (with the document's
    ``holdout`` block) and the largest relative difference of its parameters from the saved
    ones."""
    import inspect

    import numpy as np

    from common.errors import InputError
    from fit.core import fit

    if data is None:
        block = doc.get("data")
        if not isinstance(block, dict) or block.get("x") is None:
            raise InputError("the fit's JSON holds no data block (write it with quanta fit "
                             "--json, or to_dict(include_data=True))")
        data = {k: None if block.get(k) is None else np.asarray(block[k], dtype=float)
                for k in ("x", "y", "x2", "sigma")}
    takes = inspect.signature(fit).parameters
    options = {k: v for k, v in (doc.get("config") or {}).items()
               if k in takes and k not in ("form", "x", "y", "x2", "sigma") and v is not None}
    res = fit(doc["form"], data["x"], data["y"], x2=data.get("x2"), sigma=data.get("sigma"),
              **options)
    res.holdout = doc.get("holdout")
    saved = doc.get("params") or {}
    diff = max((abs(res.params[k] - v) / max(abs(v), 1e-300) for k, v in saved.items()
                if v is not None and k in res.params), default=0.0)
    return res, diff
