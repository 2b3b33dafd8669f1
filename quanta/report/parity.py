"""The parity section: ``quanta parity analyze --json`` outputs and parity run folders
(analysed here as ``quanta parity analyze`` would).

Every fitted exponent is a row against the theory. A row shows the method that measured it
where the JSON says (a ``method`` key on the fit, the run or the analysis: ours, or the
paper's way of measuring), so the analyses of one run by both methods read as theory, ours,
the paper's. The figures are those of ``empirical.parity.plots``; the runs' folders are
needed for the curves over training and the emergence maps, and without them the page draws
what the JSON holds.
"""
from __future__ import annotations

from pathlib import Path

from quanta.report.content import Block, Doc, Figure, Row
from quanta.report.svg import to_svg

#: the fits of a run's analysis, in reading order, and their names on the page
QUANTITIES = {"N": "α_N", "S": "α_S", "convergence": "convergence slope", "D": "α_D",
              "learned_vs_D": "learned ∝ D^x"}

_CAPTIONS = {
    "loss_vs_N": "final test loss against parameters, fitted and predicted slope",
    "loss_vs_S": "test loss over training, one curve per width; fit and prediction for the "
                 "widest",
    "convergence_vs_frequency": "step at which each subtask is learned against its frequency "
                                "(the model: slope −1)",
    "emergence_width": "per-subtask loss at the end against width, with the model's boundary",
    "emergence_steps": "per-subtask loss over training (widest network), with the model's "
                       "boundary",
    "loss_vs_D": "test loss against training-set size (minimum over training and final)",
    "loss_vs_S_by_D": "test loss over training, one curve per training-set size, each "
                      "minimum marked (the L(D) fits read the minimum)",
    "learned_vs_D": "subtasks learned against training-set size",
    "emergence_D": "per-subtask loss against training-set size",
    "exponents_vs_alpha": "fitted exponents against α, with the predictions α and α/(α+1) "
                          "(the paper's Figure 10)",
}


def _method(doc: dict, r: dict, f: dict) -> str | None:
    return f.get("method") or r.get("method") or doc.get("method")


def run_label(r: dict) -> str:
    name = Path(str(r.get("run", "run"))).name
    extra = f", {r['device']}" if r.get("device") else ""
    if r.get("complete") is False:
        extra += f", INCOMPLETE: step {r['steps']} of {r.get('planned_steps', '?')}"
    return f"{name} (α = {r['alpha']:g}, {r['n_tasks']} subtasks, {r['steps']} steps{extra})"


def parity_rows(d: Doc) -> list:
    rows = []
    for i, r in enumerate(d.at("runs")):
        for key, quantity in QUANTITIES.items():
            f = r.get(key)
            if not isinstance(f, dict):
                continue
            rows.append(d.row(quantity, run_label(r), ["runs", i, key, "exponent"],
                              ci=["runs", i, key, "conf_int"],
                              theory=["runs", i, key, "theory_exponent"],
                              method=_method(d.data, r, f)))
    return rows


def _headlines(result: dict) -> set[int]:
    """The runs whose figures are shown open: per kind (N or D sweep), one with a fitted
    exponent, finished (not a partial run), the most subtasks and α nearest 0.4 (the
    paper's), in that order."""
    chosen = set()
    for kind in ("N", "D"):
        cands = [(i, r) for i, r in enumerate(result["runs"]) if kind in r]
        if cands:
            chosen.add(max(cands, key=lambda c: (
                c[1][kind].get("exponent") is not None, c[1].get("complete", True),
                c[1]["n_tasks"], -abs(c[1]["alpha"] - 0.4)))[0])
    return chosen


def _json_figures(result: dict):
    """What the analysis JSON alone can draw, as (run index or None, name, Figure)."""
    import matplotlib.pyplot as plt

    from empirical.parity import plots

    def draw(plot, *args):
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        plot(*args, ax=ax)
        return fig

    for i, r in enumerate(result["runs"]):
        if isinstance(r.get("N"), dict) and r["N"].get("x") is not None:
            yield i, "loss_vs_N", draw(plots.plot_loss_vs_N, r["N"]["x"], r["N"]["y"], r["N"])
        if isinstance(r.get("D"), dict) and r["D"].get("x") is not None:
            yield i, "loss_vs_D", draw(plots.plot_loss_vs_D, r["D"]["x"], r["D"]["y"],
                                       r["D"]["y_final"], r["D"])
        if isinstance(r.get("learned_vs_D"), dict) and r["learned_vs_D"].get("x") is not None:
            f = r["learned_vs_D"]
            yield i, "learned_vs_D", draw(plots.plot_learned_vs_D, f["x"], f["y"], f)
    for sweep in result.get("alpha_sweeps") or [result[k] for k in ("alpha_sweep",)
                                                if k in result]:
        yield None, "exponents_vs_alpha", draw(plots.plot_exponents_vs_alpha, sweep)


def _run_figures(runs, result: dict):
    """Every figure of empirical.parity.plots.figures, with the run it belongs to."""
    from empirical.parity import plots

    tags = {f"_{run.path.name}": i for i, run in enumerate(runs)} if len(runs) > 1 else {}
    for name, fig in plots.figures(runs, result):
        if name == "exponents_vs_alpha":
            yield None, name, fig
            continue
        tag = max((t for t in tags if name.endswith(t)), key=len, default="")
        yield tags.get(tag, 0), name[:len(name) - len(tag)] if tag else name, fig


def _figures(block: Block, result: dict, runs) -> None:
    """Sweep figures first, the headline runs' open, every other run's collapsed."""
    open_runs = _headlines(result)
    source = _run_figures(runs, result) if runs else _json_figures(result)
    per_run: dict[int, list] = {}
    for i, name, fig in source:
        figure = Figure(to_svg(fig, f"parity-{name}"), _CAPTIONS.get(name, name))
        if i is None:
            block.figures.insert(0, figure)
        else:
            per_run.setdefault(i, []).append(figure)
    for i, figs in sorted(per_run.items()):
        label = run_label(result["runs"][i])
        for f in figs:
            f.caption = f"{label}: {f.caption}"
        if i in open_runs:
            block.figures += figs
        else:
            block.more.append((label, figs))


def _load_runs(result: dict) -> tuple[list, str]:
    from empirical.parity import load_run

    paths = [Path(str(r.get("run", ""))) for r in result["runs"]]
    missing = [str(p) for p in paths if not (p / "config.json").is_file()]
    if missing:
        return [], (f"run folder{'s' if len(missing) > 1 else ''} {', '.join(missing[:3])}"
                    f"{' …' if len(missing) > 3 else ''} not found: the curves over training "
                    "and the emergence maps need them; the figures drawn are what the JSON holds")
    return [load_run(p) for p in paths], ""


def parity_block(item, key: str | None = None) -> list[Block]:
    """A ``quanta parity analyze --json`` output (``key``: the method's part of a
    ``--method both`` output)."""
    doc = Doc(item.doc) if key is None else Doc(item.doc).sub(key)
    result = doc.data
    runs, note = _load_runs(result)
    method = {"paper": "the paper's method", "quanta": "our method"}.get(result.get("method"))
    names = [Path(str(r.get("run", "?"))).name for r in result["runs"]]
    title = (f"Multitask sparse parity: fitted exponents of {_names(names)}"
             + (f", {method}" if method else ""))
    block = Block(title, str(item.path), str(item.json_file), rows=parity_rows(doc))
    if note:
        block.notes.append(note)
    _figures(block, result, runs)
    return [block]


def parity_both_block(item) -> list[Block]:
    """A ``quanta parity analyze --method both --json`` output: our method's block, then
    the paper's."""
    return [*parity_block(item, "quanta"), *parity_block(item, "paper")]


def _names(runs: list[str]) -> str:
    """'gpu_fig2_NS', or '10 runs (D_alpha0.4, N_alpha0.1, N_alpha0.2, N_alpha0.4 …)'."""
    if len(runs) == 1:
        return runs[0]
    return f"{len(runs)} runs ({', '.join(runs[:4])}{' …' if len(runs) > 4 else ''})"


def runs_block(item) -> list[Block]:
    """Parity run folders, analysed together with the defaults of ``quanta parity analyze``."""
    from empirical.parity import analysis, load_run

    runs = [load_run(p) for p in item.runs]
    result = analysis.analyze(runs)
    names = [Path(r).name for r in item.runs]
    title = f"Multitask sparse parity: {_names(names)} analysed by the report"
    block = Block(title, str(item.path), None, rows=parity_rows(Doc(result)))
    block.notes.append("analysed here with the defaults of quanta parity analyze "
                       f"(threshold {result['threshold']:g} {result['unit']}, window "
                       f"{result['window']}); the numbers are not from a saved JSON")
    _figures(block, result, runs)
    return [block]



def _alpha_rows(doc: Doc) -> list[Row]:
    """One row per seed-mean exponent of a ``quanta parity alphas --json`` output, against
    α or α/(α+1) (each seed alone is in the figure, not the table)."""
    rows = []
    for i, r in enumerate(doc.at("rows")):
        if r.get("seed") != "mean":
            continue
        rows.append(Row(QUANTITIES[r["regime"]], f"{r['run']} (α = {r['alpha']:g})",
                        doc.cell("rows", i, "exponent"), doc.cell("rows", i, "lower"),
                        doc.cell("rows", i, "upper"), doc.cell("rows", i, "theory"),
                        method=r.get("method")))
    return rows


def alphas_block(item) -> list[Block]:
    """A ``quanta parity alphas --json`` output: the exponents of runs of several α against
    the model's α and α/(α+1), one table and one figure (every run at once)."""
    import matplotlib.pyplot as plt

    from empirical.parity import plots

    doc = Doc(item.doc)
    runs = sorted({r["run"] for r in doc.at("rows")})
    alphas = sorted({r["alpha"] for r in doc.at("rows")})
    regimes = "".join(sorted({r["regime"] for r in doc.at("rows")}, key="NSD".index))
    block = Block(f"Multitask sparse parity: α_{'/'.join(regimes)} against α over "
                  f"{_names(runs)}, α = {', '.join(f'{a:g}' for a in alphas)}",
                  str(item.path), str(item.json_file), rows=_alpha_rows(doc))
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    plots.plot_exponents_vs_alpha(doc.at("rows"), ax=ax)
    block.figures.append(Figure(to_svg(fig, f"parity-alphas-{regimes}"),
                                "measured exponents against α (filled: ours, open: the "
                                "paper's method, ×: one seed), with the predictions α and "
                                "α/(α+1) (the paper's Figures 10 and 11)"))
    block.notes += [f"{k}: the prediction inside {c['covers']} of {c['of']} intervals, "
                    f"measured − predicted {c['mean_difference']:+.3f} on average"
                    for k, c in doc.at("coverage").items()]
    block.notes += [f"regime {reg}: runs of different settings mixed" for reg in doc.at("mixed")]
    return [block]
