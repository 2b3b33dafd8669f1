"""The report's first two sections: the model's predictions (``quanta theory --json``) and
Monte Carlo against exact theory (``quanta simulate --json``, one regime or the demo's
regime → document map)."""
from __future__ import annotations

import numpy as np

from quanta.report.content import Block, Doc, Figure, fmt
from quanta.report.svg import to_svg


def theory_block(item) -> list[Block]:
    """The predicted exponents and the exact curves, redrawn by theory.plots."""
    from theory.plots import plot_predictions

    d = Doc(item.doc)
    alpha, tau, K = d.at("alpha"), d.get("tau", default=1), d.get("K")
    batch = d.get("batch") or 20_000
    axes = plot_predictions(alpha, tau, K, batch)
    caption = (f"Exact expected losses (unlearned mass, a = 0, b = 1) with their asymptotes, "
               f"and local exponents, at α = {alpha:g}, τ = {tau}, K = "
               f"{'∞' if K is None else K}; steps at batch {batch:g}.")
    figures = [Figure(to_svg(axes[0].figure, "theory"), caption)]
    what = f"α = {alpha:g}"
    said = "the model's prediction"
    rows = [d.row(q, f"{what}: L ∝ {x}^-{q}", [key], theory=[key], remark=said)
            for q, x, key in (("α_N", "N", "alpha_N"), ("α_D", "D", "alpha_D"),
                              ("α_S", "S", "alpha_S"))]
    for key, name in (("N", "N* ∝ c^x"), ("D", "D* ∝ c^x"), ("L", "L* − L∞ ∝ c^-x")):
        rows.append(d.row(f"compute-optimal {key}", f"{what}: {name}",
                          ["compute_optimal", key], theory=["compute_optimal", key],
                          remark=said))
    lead = (f"With α = {alpha:g} the model predicts α_N = {fmt(d.at('alpha_N'))} and "
            f"α_D = α_S = α/(α+1) = {fmt(d.at('alpha_D'))}; at the compute optimum "
            f"N* ∝ c^{fmt(d.at('compute_optimal', 'N'))} and "
            f"D* ∝ c^{fmt(d.at('compute_optimal', 'D'))}.")
    notes = [f"{len(d.get(k) or [])} exact losses at given {k[-1]} are in the file"
             for k in ("loss_n", "loss_D", "loss_S") if d.get(k)]
    return [Block(f"Predictions at α = {alpha:g}", str(item.path), str(item.json_file),
                  figures, rows=rows, notes=notes, lead=lead)]


def simulation_result(doc: dict):
    """A :class:`simulate.SimulationResult` rebuilt from its saved summary (the points'
    mean, standard error and exact theory; the realizations themselves are not saved)."""
    from simulate.core import SimulationResult

    pts = doc["points"]
    col = lambda k: np.array([np.nan if p[k] is None else p[k] for p in pts], float)  # noqa: E731
    return SimulationResult(config=dict(doc["config"]), x=col("x"), mean=col("mean"),
                            sem=col("sem"), losses=np.empty((0, len(pts))), theory=col("theory"),
                            p_learned=None)


def simulate_block(item) -> list[Block]:
    """Simulated mean loss against the exact expectation, per regime, with the exponent
    fitted in the asymptotic window against the predicted one."""
    from quanta.commands.simulate import figure

    docs = {"": item.doc} if "points" in item.doc else item.doc
    block = Block("Monte Carlo of quanta learning", str(item.path), str(item.json_file))
    for key, doc in docs.items():
        d = Doc(item.doc).sub(key) if key else Doc(item.doc)
        cfg = doc["config"]
        regime = cfg["regime"]
        result = simulation_result(doc)
        what = (f"regime {regime}, α = {cfg['alpha']:g}, K = {cfg['K']:,}, "
                f"{cfg['reps']} realization{'s' if cfg['reps'] != 1 else ''}, seed {cfg['seed']}")
        block.figures.append(Figure(to_svg(figure(result), f"simulate-{regime}"),
                                    f"Regime {regime}: simulated mean loss ± 2 SE against the "
                                    f"exact expectation (top) and local exponents (bottom)."))
        quantity = "α_N" if regime == "N" else f"α_{regime}"
        block.rows.append(d.row(quantity, what, ["exponent"], theory=["theory_exponent"]))
        lo, hi = doc["exponent_window"]
        block.notes.append(f"{regime}: exponent fitted over {fmt(lo, 3)} … {fmt(hi, 3)} with ε_K "
                           f"added back; without it {fmt(doc.get('exponent_raw'))}")
    return [block]
