"""The fits section: ``quanta fit … --json`` outputs (a table fit, published exponents,
a rank-frequency exponent, a consistency check) and the fit demo's fits by regime.

A table fit's JSON holds its estimates, not its data; the figure is a refit of the data
file named in the JSON (``source`` and ``columns``, or an embedded ``data`` block) with the
saved settings, checked against the saved estimates. The table always shows the saved
numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.errors import QuantaError
from quanta.report.content import Block, Cell, Doc, Figure, capitalized, fmt
from quanta.report.svg import to_svg

#: the exponents of each form and what they are called on the page
EXPONENTS = {"alpha": "α", "alpha2": "α₂ (past the bend)", "beta": "β"}
_VARIABLE_NAMES = {"N": "α_N", "D": "α_D", "S": "α_S"}

#: relative difference above which a refit is said not to reproduce the saved estimates
REFIT_RTOL = 1e-6


def _quantity(name: str, form: str, variable: str | None) -> str:
    if form in ("chinchilla", "max"):
        return {"alpha": "α_N", "beta": "α_D"}.get(name, name)
    if name == "alpha" and variable in _VARIABLE_NAMES:
        return _VARIABLE_NAMES[variable]
    return EXPONENTS.get(name, name)


def fit_rows(d: Doc, what: str, theory=None) -> list:
    """Rows of a fit's exponents with their intervals, and the α the model reads from them."""
    form, cfg = d.at("form"), d.get("config") or {}
    rows = []
    for name in d.at("params"):
        if name in EXPONENTS:
            rows.append(d.row(_quantity(name, form, cfg.get("variable")), what,
                              ["params", name], ci=["ci", name], theory=theory,
                              level=d.get("level", default=0.95)))
    for reading, r in (d.get("alpha_implied") or {}).items():
        rows.append(d.row(f"α read from α_{reading}", f"{what}: the model's reading",
                          ["alpha_implied", reading, "value"],
                          ci=["alpha_implied", reading, "ci"]))
    return rows


def _data(item) -> tuple[dict | None, str]:
    """The fit's data columns, from the JSON's ``data`` block or its source file."""
    doc = item.doc
    if isinstance(doc.get("data"), dict) and doc["data"].get("x") is not None:
        data = doc["data"]
        return {k: None if data.get(k) is None else np.asarray(data[k], float)
                for k in ("x", "y", "x2", "sigma")}, ""
    source, cols = doc.get("source"), doc.get("columns") or {}
    if not source or not cols.get("x") or not cols.get("y"):
        return None, "no figure: the JSON names no data file (give the fit's data block)"
    from fit.inputs import load_xy

    for path in (Path(source), Path(item.json_file).parent / source):
        if path.is_file():
            try:
                got = load_xy(path, cols["x"], cols["y"], x2=cols.get("x2"),
                              sigma=cols.get("sigma"))
            except QuantaError as err:
                return None, f"no figure: {path}: {err}"
            return {k: got.get(cols[k]) if cols.get(k) else None
                    for k in ("x", "y", "x2", "sigma")}, ""
    return None, f"no figure: its data file {source} was not found"


def _extrapolation(doc: dict, res, data: dict, ax) -> str:
    """Draw the held-out check on ``ax``: the JSON's ``holdout`` block where there is one,
    else fit.extrapolation_check (20 % largest sizes held out, no bootstrap)."""
    from fit import extrapolation_check
    from fit.plots import plot_fit

    hold = doc.get("holdout")
    if isinstance(hold, dict) and hold.get("x"):
        res.holdout = hold
        plot_fit(res, ax=ax)            # draws the held-out points with their band
        return (f"the {len(hold['x'])} held-out largest sizes are predicted with an RMSLE of "
                f"{fmt(hold.get('rmsle'), 2)} (the fit's holdout block)")
    options = {k: v for k, v in (doc.get("config") or {}).items()
               if k in ("loss", "delta", "variable", "smooth") and v is not None}
    if data["sigma"] is not None:
        options["sigma"] = data["sigma"]
    ex = extrapolation_check(doc["form"], data["x"], data["y"], x2=data["x2"], holdout=0.2,
                             **options)
    plot_fit(ex.fit, ax=ax)             # ex.fit carries the check's holdout block: drawn
    return (f"fitted on the {ex.n_train} smallest sizes, the {len(ex.x_test)} held-out "
            f"largest are predicted within {ex.mean_abs_rel_error:.2%} on average (a check "
            f"the report made: the JSON has no holdout block)")


def _fit_figure(item, block: Block) -> str:
    """Draw the fit, its residuals and (one variable) the extrapolation check; returns
    the check's outcome in words ("" where none was drawn)."""
    import matplotlib.pyplot as plt

    from fit.plots import plot_fit, plot_residuals
    from fit.summary import refit

    data, why = _data(item)
    if data is None:
        block.notes.append(why)
        return ""
    try:
        res, diff = refit(item.doc, data)
    except QuantaError as err:
        block.notes.append(f"no figure: the refit of its data failed: {err}")
        return ""
    if diff > REFIT_RTOL:
        block.notes.append(f"the figure is a refit of the data that differs from the saved "
                           f"estimates by up to {diff:.2g} (relative); the table shows the "
                           f"saved ones")
    joint = res.x2 is not None
    if not joint:
        res.holdout = None              # the held-out points get their own panel (axes[2])
    fig, axes = plt.subplots(1, 2 if joint else 3, figsize=(10 if joint else 14, 3.8))
    cols = item.doc.get("columns") or {}
    plot_fit(res, ax=axes[0])
    plot_residuals(res, ax=axes[1])
    for ax in axes[:2]:
        ax.set_xlabel(cols.get("x") or ax.get_xlabel())
    axes[0].set_ylabel(cols.get("y") or axes[0].get_ylabel())
    checked = ""
    if not joint:
        try:
            checked = _extrapolation(item.doc, res, data, axes[2])
        except QuantaError as err:
            block.notes.append(f"no extrapolation check: {err}")
        axes[2].set_title("extrapolation check", fontsize=9)
    fig.tight_layout()
    block.figures.append(Figure(to_svg(fig, "fit"), f"{res.form} fit of {item.doc.get('source')}"
                                f" with its {res.level:.0%} bootstrap band, log residuals"
                                + ("" if joint else ", and the check on held-out sizes.")))
    return checked


def fit_block(item) -> list[Block]:
    """A ``quanta fit DATA --json`` output: the fit, its residuals, the extrapolation check
    and the quantization model's reading."""
    d = Doc(item.doc)
    source = item.doc.get("source") or Path(item.path).name
    cols = item.doc.get("columns") or {}
    group = ((item.doc.get("selection") or {}).get("group")) or {}
    name = Path(str(source)).name + (f" [{group['column']} = {group['value']}]"
                                     if group else "")
    what = f"{d.at('form')} fit of {name}" + (
        f" ({cols.get('y')} against {cols.get('x')})" if cols.get("x") else "")
    theory = ["predicted_exponent"] if d.get("predicted_exponent") is not None else None
    block = Block(f"Fit: {name}", str(item.path), str(item.json_file),
                  rows=fit_rows(d, what, theory))
    checked = _fit_figure(item, block)
    if theory is None:
        block.lead = reading(block.rows, checked)
    block.notes += _fit_notes(d)
    return [block]


def groups_block(item) -> list[Block]:
    """A ``quanta fit DATA --group COLUMN --json`` output: one block per group, each read as
    a fit of its own (its document has the usual keys)."""
    from dataclasses import replace

    blocks = []
    for doc in item.doc["groups"].values():
        blocks += fit_block(replace(item, doc=doc))
    return blocks


def reading(rows, checked: str = "") -> str:
    """A fit without a prediction in one sentence: its exponents, the α the model reads
    from them, and how well it extrapolates."""
    parts = [r.sentence for r in rows if not r.quantity.startswith("α read")]
    for r in rows:
        if r.quantity.startswith("α read") and r.value.value is not None:
            ci = r.interval
            parts.append(f"the quantization model reads α = {r.value.text}"
                         + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")
                         + f" from {r.quantity.rsplit(' ', 1)[-1]}")
    if checked:
        parts.append(checked)
    return capitalized("; ".join(parts)) + "." if parts else ""


def _fit_notes(d: Doc) -> list[str]:
    notes = [f"warning: {w}" for w in d.get("warnings") or []]
    failed, boot = d.get("n_failed_bootstrap"), d.get("n_bootstrap")
    if boot:
        notes.append(f"{boot} bootstrap resamples ({d.get('ci_method')} intervals), "
                     f"{failed or 0} failed refits")
    return notes


def regimes_block(item) -> list[Block]:
    """The fit demo: power laws fitted to simulated curves against the predicted exponents,
    the N–D consistency check and the published exponents."""
    d = Doc(item.doc)
    block = Block("Power-law fits of simulated curves", str(item.path), str(item.json_file))
    for regime in d.at("regimes"):
        r = d.sub("regimes", regime)
        sim = r.get("simulation") or {}
        what = f"L({regime}) of a simulation, α = {sim.get('alpha', d.get('alpha'))}"
        block.rows += [row for row in fit_rows(r, what, ["predicted_exponent"])
                       if not row.quantity.startswith("α read")]
    if isinstance(d.get("consistency_N_D"), dict):
        block.rows.append(_consistency_row(d.sub("consistency_N_D")))
    blocks = [block]
    if isinstance(d.get("literature"), dict):
        blocks += _literature(d.sub("literature"), item)
    return blocks


def _consistency_row(d: Doc):
    return d.row("α_D − α_N/(α_N+1)", "consistency of the N and D fits (the model: 0)",
                 ["gap"], ci=["gap_ci"], theory=Cell(0.0))


def consistency_block(item) -> list[Block]:
    d = Doc(item.doc)
    rows = [_consistency_row(d),
            d.row("α from α_N", "consistency check", ["alpha_from_N"], ci=["alpha_from_N_ci"]),
            d.row("α from α_D", "consistency check", ["alpha_from_D"], ci=["alpha_from_D_ci"])]
    return [Block("Consistency of α_N and α_D", str(item.path), str(item.json_file), rows=rows)]


def _literature(d: Doc, item) -> list[Block]:
    """Published (α_N, α_D) pairs against α_D = α_N/(α_N+1) (the paper's Figure 18)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from fit.plots import plot_literature

    points = pd.DataFrame(d.at("points"))
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    plot_literature(points, ax=ax, show_paper_swap="paper_alpha_N" in points)
    row = d.row("median α_D − α_N/(α_N+1)", f"{d.get('n_points')} published pairs",
                ["median_gap"], theory=Cell(0.0))
    caption = (f"Published data exponents against parameter exponents (the paper's Figure 18); "
               f"source: {d.get('source')}.")
    return [Block("Published exponents against the model", str(item.path), str(item.json_file),
                  [Figure(to_svg(fig, "literature"), caption)], rows=[row])]


def literature_block(item) -> list[Block]:
    return _literature(Doc(item.doc), item)


def sizes_block(item) -> list[Block]:
    """``quanta fit sizes --json``: a rank-frequency exponent with its interval."""
    d = Doc(item.doc)
    what = f"{d.at('method')} over ranks {d.get('rank_window')}, {d.get('n')} items"
    row = d.row("α̂ (rank-frequency)", what, ["alpha_hat"], ci=["ci"],
                level=d.get("level", default=0.95))
    source = Path(str(item.doc.get("source") or item.path)).name
    return [Block(f"Rank-frequency exponent: {source}", str(item.path), str(item.json_file),
                  rows=[row], notes=[f"warning: {w}" for w in d.get("warnings") or []])]
