"""Exponents measured across runs of different α, against the quantization model: α_N = α,
α_S = α_D = α/(α+1). The paper's Figures 10 (N, S) and 11 (D) as one table and one figure.

Each run (one α) is analysed by our method, the paper's or both (:func:`analysis.analyze`);
with several seeds, each seed is also analysed alone (:func:`seed_view`), so the table shows
the seed-mean run beside the scatter between seeds. One row per (run, seed, method, regime):
the measured exponent, its 95 % interval, the theory, and whether the interval covers it.
Runs of one regime made with different settings (task, widths, steps, D grid) are listed
together but flagged in ``mixed``, since their exponents are not one experiment.
"""
from __future__ import annotations

import copy

import numpy as np

from common.errors import InputError
from common.results import Result, jsonable

from . import analysis
from .run import Run
from .sweeps import PER_NETWORK

#: the regimes read against α, and the model's exponent of each
THEORY = {"N": lambda a: a, "S": lambda a: a / (a + 1), "D": lambda a: a / (a + 1)}
SEED_MEAN = "mean"


def seed_view(run: Run, seed: int) -> Run:
    """``run`` restricted to the networks of one ``seed``: what the analysis of a run trained
    with that seed alone reads (every network's metrics are its own)."""
    keep = np.flatnonzero(run.metrics["seeds"] == seed)
    if not keep.size:
        raise InputError(f"seed {seed} is not in {run.path}; its seeds: "
                         f"{sorted(set(run.metrics['seeds'].tolist()))}")
    view = copy.copy(run)
    view.metrics = {k: (np.asarray(v)[keep] if k in PER_NETWORK else v)
                    for k, v in run.metrics.items()}
    view.config = copy.deepcopy(run.config)
    view.config.train.seeds = [int(seed)]
    return view


def _signature(run: Run) -> str:
    sig = analysis.sweep_signature(run)
    sig["D"] = run.config.train.D
    return repr(sig)


def _views(run: Run, per_seed: bool) -> list[tuple[str | int, Run]]:
    seeds = sorted(set(run.metrics["seeds"].tolist()))
    views: list[tuple[str | int, Run]] = [(SEED_MEAN, run)]
    if per_seed and len(seeds) > 1:
        views += [(int(s), seed_view(run, s)) for s in seeds]
    return views


def _label(run: Run) -> str:
    """The run's folder, with its parent's for the per-α folders of a several-α run."""
    p = run.path
    return f"{p.parent.name}/{p.name}" if p.name.startswith("alpha") else p.name


def _options_of(method: str, options: dict) -> dict:
    """The options of :func:`alpha_sweep` that ``method``'s analysis takes."""
    ours = {"threshold", "unit", "window"}
    return {k: v for k, v in options.items() if (k in ours) == (method == "quanta")}


def _rows_of(label: str, seed, ra, regimes=tuple(THEORY)) -> list[dict]:
    """The table rows of one run analysis (one method) in ``regimes`` (those with a fit),
    with their analysis kept for intervals at other levels."""
    rows, alpha = [], float(ra["alpha"])
    for regime in regimes:
        f, theory = ra.get(regime), THEORY[regime]
        if f is None or f["exponent"] is None:
            continue
        lo, hi = f["conf_int"]
        rows.append(dict(run=label, alpha=alpha, seed=seed, method=ra.method, regime=regime,
                         exponent=f["exponent"], lower=lo, upper=hi, theory=theory(alpha),
                         covers=bool(lo <= theory(alpha) <= hi), complete=ra["complete"],
                         _analysis=ra))
    return rows


def alpha_sweep(runs, method: str = "both", per_seed: bool = True, **options) -> "AlphaSweep":
    """Measure N, S and D exponents of each run (and of each seed alone when ``per_seed``)
    by ``method`` ("quanta", "paper" or "both"; ``options`` go to :func:`analysis.analyze`)
    and set them against α and α/(α+1). Needs runs of at least two α."""
    if method not in analysis.METHODS:
        raise InputError(f"method must be one of {analysis.METHODS}, got {method!r}")
    runs = [r if isinstance(r, Run) else Run(r) for r in runs]
    alphas = sorted({float(r.config.task.alpha) for r in runs})
    if len(alphas) < 2:
        raise InputError(f"an α sweep needs runs of at least two α; got α = {alphas} "
                         f"({len(runs)} run(s)): name the runs of the other α too")
    methods = ["quanta", "paper"] if method == "both" else [method]
    analyses, signatures = [], {}      # signatures: regime → settings of the runs it fits
    for run in runs:
        label, signature = _label(run), _signature(run)
        for seed, view in _views(run, per_seed):
            for m in methods:
                ra = analysis.analyze([view], method=m, **_options_of(m, options)).runs[0]
                analyses.append((label, seed, ra))
                for row in _rows_of(label, seed, ra):
                    signatures.setdefault(row["regime"], set()).add(signature)
    mixed = sorted(reg for reg, sigs in signatures.items() if len(sigs) > 1)
    return AlphaSweep(analyses, method=method, mixed=mixed)


def _columns(config: dict, sweep: "AlphaSweep") -> dict:
    """One sweep of :func:`sweeps` as JSON: the seed-mean run of each α (ordered by α, then
    folder) as columns, ``run``, ``alpha``, ``N``/``S``/``convergence`` with ``*_conf_int``
    (None where a run has no fit), ``theory_N``/``theory_S``, ``S_from_convergence``; then
    ``rows`` and ``coverage`` of the :class:`AlphaSweep`."""
    means = sorted((ra for _, seed, ra in sweep.analyses if seed == SEED_MEAN),
                   key=lambda r: (r["alpha"], r["run"]))
    out: dict = dict(config=config, run=[r["run"] for r in means],
                     alpha=[r["alpha"] for r in means])
    for reg in ("N", "S", "convergence"):
        out[reg] = [r[reg]["exponent"] for r in means]
        out[f"{reg}_conf_int"] = [r[reg]["conf_int"] for r in means]
    for reg in ("N", "S"):
        out[f"theory_{reg}"] = [r[reg]["theory_exponent"] for r in means]
    out["S_from_convergence"] = [r["S"].get("exponent_from_convergence") for r in means]
    return dict(out, method=sweep.method, rows=sweep.rows(), coverage=sweep.coverage())


def sweeps(runs: list[Run], analyses: list) -> list[dict]:
    """The α sweeps among ``runs`` already analysed by one method (``analyses``: a
    :class:`analysis.RunAnalysis` each), as :func:`analysis.analyze` reports them in
    ``alpha_sweeps``: the online runs that share a :func:`analysis.sweep_signature` and cover
    at least two α (so runs of different tasks or lengths are never mixed), most α first,
    each as :func:`_columns` of the :class:`AlphaSweep` of their seed-mean analyses."""
    groups: dict = {}
    for run, ra in zip(runs, analyses):
        if "N" in ra:
            sig = analysis.sweep_signature(run)
            groups.setdefault(repr(sig), (sig, []))[1].append((_label(run), SEED_MEAN, ra))
    found = [_columns(sig, AlphaSweep(members, method=members[0][2].method, mixed=[]))
             for sig, members in groups.values()
             if len({ra["alpha"] for *_, ra in members}) >= 2]
    return sorted(found, key=lambda sw: -len(set(sw["alpha"])))


class AlphaSweep(Result):
    """Exponents against α (:func:`alpha_sweep`). ``rows()``: one dict per (run, seed,
    method, regime): ``alpha``, ``seed`` ("mean": the run's seeds averaged, else one seed),
    ``exponent``, ``lower``/``upper`` (95 %), ``theory``, ``covers``; ``params`` names each
    exponent ``"<method>:<regime>@alpha=<α>[/seed=<s>]"``; ``conf_int(alpha)`` recomputes
    each interval at that level from its fit; ``mixed`` lists regimes whose runs differ in
    settings; ``plot()`` draws the measured exponents against α with the theory lines."""

    def __init__(self, analyses: list[tuple], method: str, mixed: list[str]):
        #: (run label, seed or "mean", RunAnalysis) of every run, seed and method measured
        self.analyses, self.method, self.mixed = analyses, method, mixed
        self._rows = [row for label, seed, ra in analyses for row in _rows_of(label, seed, ra)]

    @staticmethod
    def _name(r: dict) -> str:
        seed = "" if r["seed"] == SEED_MEAN else f"/seed={r['seed']}"
        return f"{r['method']}:{r['regime']}@alpha={r['alpha']:g}{seed}"

    def rows(self) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in self._rows]

    def table(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    @property
    def params(self) -> dict:
        names = [self._name(r) for r in self._rows]
        if len(set(names)) < len(names):
            raise InputError("two runs of one α and regime: params would mix them; "
                             "read rows() instead")
        return {n: r["exponent"] for n, r in zip(names, self._rows)}

    def _bounds(self, level: float, **kwargs):
        return {self._name(r): r["_analysis"]._bounds(level)[r["regime"]] for r in self._rows}

    def coverage(self) -> dict:
        """Per method and regime, over the seed-mean rows: how many intervals cover the
        theory, of how many, and the mean of measured − theory."""
        out = {}
        for r in self._rows:
            if r["seed"] == SEED_MEAN:
                c = out.setdefault(f"{r['method']}:{r['regime']}", dict(covers=0, of=0, diff=[]))
                c["covers"] += r["covers"]
                c["of"] += 1
                c["diff"].append(r["exponent"] - r["theory"])
        return {k: dict(covers=c["covers"], of=c["of"], mean_difference=float(np.mean(c["diff"])))
                for k, c in out.items()}

    def summary(self) -> str:
        lines = [f"{'regime':<7}{'α':>5} {'seed':>5} {'method':<7}{'theory':>8}  "
                 f"{'measured [95 %]':<26}covers"]
        for r in sorted(self._rows, key=lambda r: (r["regime"], r["alpha"], str(r["seed"]),
                                                    r["method"])):
            lines.append(f"{r['regime']:<7}{r['alpha']:>5g} {str(r['seed']):>5} "
                         f"{r['method']:<7}{r['theory']:>8.3f}  {r['exponent']:.3f} "
                         f"[{r['lower']:.3f}, {r['upper']:.3f}]{'':<6}"
                         f"{'yes' if r['covers'] else 'no'}"
                         f"{'' if r['complete'] else '  INCOMPLETE'}")
        for key, c in self.coverage().items():
            lines.append(f"{key}: theory inside {c['covers']} of {c['of']} intervals, "
                         f"measured − theory {c['mean_difference']:+.3f} on average")
        lines += [f"regime {reg}: runs of different settings (task, widths, steps or D grid) "
                  f"mixed" for reg in self.mixed]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return jsonable(dict(method=self.method, rows=self.rows(), coverage=self.coverage(),
                             mixed=self.mixed,
                             theory=dict(N="alpha", S="alpha/(alpha+1)", D="alpha/(alpha+1)")))

    def plot(self, ax=None):
        """Measured exponents against α, the theory lines α and α/(α+1) beside them."""
        from . import plots

        return plots.plot_exponents_vs_alpha(self.rows(), ax=ax)
