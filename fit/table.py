"""Fitting a table as its authors hold it: read it, select rows, fit each group.

``fit_table("runs/", x="config.N", y="results.loss", where="dataset == 'c4'", dropna=True)``
reads any table :func:`fit.inputs.read_table` reads (or takes a DataFrame), keeps the rows
the query selects, drops (and counts) rows with missing values, and fits; with ``group=`` it
fits each group and returns a :class:`GroupFits`. With ``holdout=K`` each fit leaves its K
largest sizes out and carries the extrapolation check's ``holdout`` block.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable

#: column names read as the variable they name (for the quantization model's reading)
VARIABLES = ("N", "D", "S", "C")


def fit_table(data, x, y, *, form=None, x2=None, sigma=None, group=None, where=None,
              dropna=False, sep=None, decimal=None, assign=(), holdout=0, variable=None,
              **options):
    """Fit columns ``x``, ``y`` (``x2``, ``sigma``) of ``data`` (a path or a DataFrame).

    form: default "power" (one variable) or "chinchilla" (with ``x2``); ``variable``: what x
    is ("N", "D", "S", "C"; default the column's name when it is one of these); ``where``,
    ``dropna``, ``assign`` ("D = C / (6 * N)": a column made from others), ``sep``,
    ``decimal``: :func:`fit.inputs.select_rows` and :func:`fit.inputs.read_table`;
    ``group``: a column; one fit per distinct value (a :class:`GroupFits`); ``holdout``: the
    number (or fraction) of largest sizes left out and predicted
    (:func:`fit.extrapolation_check`). Other options go to :func:`fit.fit`.
    """
    from fit.forms import JOINT_FORMS
    from fit.inputs import load_rows, select_rows

    form = form or ("chinchilla" if x2 else "power")
    if form not in JOINT_FORMS and variable is None and str(x).upper() in VARIABLES:
        variable = str(x).upper()
    numeric, keep = [x, y, x2, sigma], [group]
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        rows = load_rows(data, numeric, keep=keep, sep=sep, where=where, dropna=dropna,
                         assign=assign, decimal=decimal)
    else:
        rows = select_rows(data, numeric, keep=keep, where=where, dropna=dropna,
                           assign=assign)
    names = dict(x=x, y=y, x2=x2, sigma=sigma)
    assign = [assign] if isinstance(assign, str) else list(assign or ())
    selection = {"where": where, "dropna": bool(dropna), "assign": assign or None,
                 "rows": rows.counts}
    source = None if hasattr(data, "columns") else str(data)   # a file: named in refusals
    if group is None:
        return _fit_rows(rows.table, form, names, holdout, variable, options, selection,
                         source)
    fits = {}
    for value, part in rows.table.groupby(group, sort=True):
        sel = {**selection, "group": {"column": group, "value": jsonable(value)}}
        try:
            fits[str(value)] = _fit_rows(part, form, names, holdout, variable, options, sel,
                                         source)
        except InputError as err:
            raise InputError(f"group {group}={value!r}: {err} (leave it out with --where)") \
                from None
    return GroupFits(group, fits)


def _fit_rows(table, form, names, holdout, variable, options, selection, source=None):
    """One fit of the rows of ``table`` (or its extrapolation check with ``holdout``);
    ``source``: the file they were read from, named with the column in refusals."""
    from fit import extrapolation_check, fit
    from fit.forms import fitted_spec
    from fit.inputs import check_xy

    cols = {k: None if v is None else table[v].to_numpy(dtype=float) for k, v in names.items()}
    spec = fitted_spec(form, options)
    labels = tuple(f"{source}: column {c!r}" if source else c for c in
                   (names["x"], names["y"], names["x2"] or "x2", names["sigma"] or "sigma"))
    check_xy(cols["x"], cols["y"], x2=cols["x2"], sigma=cols["sigma"], n_params=spec.n_free,
             names=labels, rows=np.asarray(table.index, dtype=int) + 1)
    options = {**options, "variable": variable}
    if holdout:
        check = extrapolation_check(form, cols["x"], cols["y"], x2=cols["x2"],
                                    sigma=cols["sigma"], holdout=holdout, **options)
        res = check.fit                 # it carries the check's holdout block
    else:
        res = fit(form, cols["x"], cols["y"], x2=cols["x2"], sigma=cols["sigma"], **options)
    # used: the rows selected (held-out ones included); fitted: those the law was fitted to
    res.selection = {**selection, "rows": {**selection["rows"], "used": len(table),
                                           "held_out": len(table) - res.n_points,
                                           "fitted": res.n_points}}
    return res


@dataclass
class GroupFits(Result):
    """One fit per group of a table: ``fits`` maps the group's value (as text) to its
    :class:`fit.FitResult`. ``params``/``conf_int`` name each estimate ``alpha[group]``;
    :meth:`table` lays them out one row per group."""
    group_by: str
    fits: dict

    def __getitem__(self, key):
        return self.fits[str(key)]

    def __iter__(self):
        return iter(self.fits)

    def __len__(self):
        return len(self.fits)

    @property
    def level(self) -> float:
        return next(iter(self.fits.values())).level

    @property
    def params(self) -> dict:
        return {f"{k}[{g}]": float(v) for g, r in self.fits.items() for k, v in r.params.items()}

    def _bounds(self, level: float, **kwargs) -> dict:
        return {f"{k}[{g}]": b for g, r in self.fits.items()
                for k, b in r._bounds(level, **kwargs).items()}

    def table(self, alpha: float | None = None):
        """A DataFrame, one row per group: points used, each parameter with its interval
        (``alpha_lower``, ``alpha_upper``), failed refits and the number of warnings."""
        import pandas as pd

        level = 1.0 - self._alpha(alpha, None)
        rows = []
        for g, r in self.fits.items():
            ci = r._bounds(level)
            row = {self.group_by: g, "n_points": r.n_points}
            for k, v in r.params.items():
                row.update({k: v, f"{k}_lower": ci[k][0], f"{k}_upper": ci[k][1]})
            row.update(failed=r.n_failed_bootstrap, warnings=len(r.warnings))
            rows.append(row)
        return pd.DataFrame(rows).set_index(self.group_by)

    def summary(self) -> str:
        from fit.checks import unreliable_intervals
        from fit.result import FORMULAS
        from fit.summary import UNRELIABLE, UNRELIABLE_NOTE, table

        first = next(iter(self.fits.values()))
        names = list(first.params)
        rows, marked = [], False
        for g, r in self.fits.items():
            ci, weak = r._bounds(r.level), unreliable_intervals(r)
            marked |= bool(weak)
            rows.append([g, str(r.n_points)] + [f"{r.params[k]:.4g} [{ci[k][0]:.4g}, "
                                                f"{ci[k][1]:.4g}]" + UNRELIABLE * (k in weak)
                                                for k in names]
                        + [str(r.n_failed_bootstrap)])
        lines = [f"{first.form} fits by {self.group_by} ({len(self)} groups)    "
                 f"{FORMULAS[first.form]}", f"values with {first.level:.0%} intervals "
                 f"({first.interval_method})", ""]
        lines += table([self.group_by, "points"] + names + ["failed"], rows, {1})
        lines += [UNRELIABLE_NOTE] * marked
        lines += [f"warning [{g}]: {w}" for g, r in self.fits.items() for w in r.warnings]
        return "\n".join(lines)

    def to_dict(self, include_data: bool = False) -> dict:
        """``group_by``, ``level`` and ``groups``: the group's value → its fit's document
        (the keys of ``FitResult.to_dict``)."""
        return jsonable({"group_by": self.group_by, "level": self.level,
                         "groups": {g: r.to_dict(include_data) for g, r in self.fits.items()}})

    def plot(self, ax=None):
        """Every group's data and fit on one pair of axes, a colour per group
        (``fit.plots.plot_groups``)."""
        from fit.plots import plot_groups

        return plot_groups(self, ax=ax)
