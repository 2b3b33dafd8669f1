"""The per-token section: ``quanta tokens analyze --json`` outputs (docs/tokens.md lists the
keys). The figures are drawn from the saved JSON by ``fit.tokens.plots``; the table sets
the α read from the mean loss, the α read from where tokens drop sharply and the monogenic
fraction against the generator's truth when the matrix was generated (the ``truth``
block), and the two α against each other otherwise (the model reads one α from both)."""
from __future__ import annotations

from functools import partial

from quanta.report.content import Block, Cell, Doc, Figure, fmt, pointer
from quanta.report.svg import to_svg


def _words(axis: str) -> dict:
    if axis == "sizes":
        return {"x": "N", "what": "model size N", "one": "model", "many": "model sizes"}
    return {"x": "S", "what": "checkpoint step S", "one": "checkpoint", "many": "checkpoints"}


def _figure_specs(doc: dict) -> list[tuple]:
    """(name, caption, the key paths it needs, draw(doc) → Axes, collapsed?) per figure."""
    from fit.tokens import plots

    w = _words(doc.get("axis"))
    level = f"{doc.get('level', 0.95):.0%}"
    dist = [("distribution", "edges"), ("distribution", "counts"), ("n_tokens",)]
    specs = [
        ("tokens-mean", f"Mean loss per token against {w['what']} with its {level} bootstrap "
         "interval (observed) and the fitted power law and offset form (predicted).",
         [("x",), ("mean_loss",), ("mean_loss_ci",), ("mean_loss_fits", "power", "params"),
          ("mean_loss_fits", "offset", "params")], plots.plot_mean_loss, False),
        ("tokens-pL", f"p(L): the distribution of per-token losses, one curve per {w['one']} "
         "(lighter: larger), as the paper's Figure 3.", dist, plots.plot_distribution, False),
        ("tokens-LpL", "L·p(L): each loss's share of the mean loss, one curve per "
         f"{w['one']}.", dist, partial(plots.plot_distribution, weighted=True), False),
        ("tokens-examples", "Sampled per-token curves called sharp (a drop at one "
         f"{w['one']}: monogenic-like, red) and gradual (a power law: polygenic-like, blue).",
         [("examples",)], plots.plot_examples, False),
    ]
    if doc.get("axis") == "steps":
        specs.append(("tokens-heatmap", "Losses of sampled tokens over training, ordered by "
                      "the checkpoint after which they stay solved (the paper's Figure 11).",
                      [("heatmap", "losses")], plots.plot_heatmap, False))
    specs += [
        ("tokens-fraction", "Fraction of tokens below the solved threshold per "
         f"{w['one']} (observed) and 1 − (E + A·{w['x']}^-e) with the mean loss's exponent "
         "(predicted).", [("distribution", "fraction_below"), ("distribution", "threshold")],
         plots.plot_fraction_below, True),
        ("tokens-drops", "Sharp drops per gap between neighbouring "
         f"{w['many']} (observed) and the counts each fitted exponent predicts.",
         [("drops", "counts"), ("drops", "lower"), ("drops", "upper"), ("drops", "expected"),
          ("estimates",)], plots.plot_drops, True),
    ]
    return specs


def _lacking(d: Doc, needs) -> list[str]:
    """The key paths of ``needs`` the document does not hold (absent, null or empty)."""
    out = []
    for keys in needs:
        value = d.get(*keys)
        if value is None:
            out.append(f"{pointer(*keys)} is absent")
        elif isinstance(value, (list, dict)) and not value:
            out.append(f"{pointer(*keys)} is empty")
    return out


def _figures(d: Doc, block: Block) -> None:
    """Each figure the document holds the data for; a note naming what is missing for the
    others (never dropped silently)."""
    shown, more = [], []
    for name, caption, needs, draw, collapsed in _figure_specs(d.data):
        lacking = _lacking(d, needs)
        if lacking:
            block.notes.append(f"No figure '{caption.split(':')[0].split(' (')[0]}': the JSON's "
                               + "; ".join(lacking) + ".")
            continue
        (more if collapsed else shown).append(Figure(to_svg(draw(d.data).figure, name),
                                                     caption))
    block.figures = shown
    if more:
        block.more.append(("The fraction of solved tokens and where tokens drop", more))
    kinds = [k for k in ("sharp", "gradual") if not d.get("examples", k, "losses")]
    if kinds and d.get("examples"):
        block.notes.append(f"No {' or '.join(kinds)} example curves: the sample of "
                           f"/examples holds none.")


def _rows(d: Doc, truth: bool) -> list:
    """α from the mean loss, α from the drops, the monogenic fraction and the gap of the two
    α, against the truth (generated) or each other."""
    w = _words(d.at("axis"))
    unit = f"{d.get('level', default=0.95):.0%} bootstrap over {d.get('unit', default='unit')}s"
    via = "" if d.at("axis") == "sizes" else ", α = α_S/(1 − α_S)"
    est = lambda name: ["estimates", name, "value"]             # noqa: E731
    ci = lambda name: ["estimates", name, "ci"]                 # noqa: E731
    mean_what = f"mean loss, offset form E + A·{w['x']}^-e{via}; {unit}"
    drop_what = f"where tokens drop sharply, density ∝ {w['x']}^-(e+1){via}; {unit}"
    mono_what = "share of changing tokens that drop sharply (drops past the last " \
                f"{w['one']} counted)"
    if truth:
        rows = [d.row("α (mean loss)", mean_what, est("alpha_offset"), ci("alpha_offset"),
                      ["truth", "alpha"]),
                d.row("α (drops)", drop_what, est("alpha_drops"), ci("alpha_drops"),
                      ["truth", "alpha"]),
                d.row("monogenic fraction", mono_what, est("monogenic_fraction"),
                      ci("monogenic_fraction"), ["truth", "monogenic"])]
    else:
        rows = [d.row("α (mean loss)", mean_what, est("alpha_offset"), ci("alpha_offset"),
                      remark="the model reads one α from both: compared in the last row"),
                d.row("α (drops)", drop_what, est("alpha_drops"), ci("alpha_drops"),
                      remark="compared in the last row"),
                d.row("monogenic fraction", mono_what, est("monogenic_fraction"),
                      ci("monogenic_fraction"), remark="a property of the text: no prediction")]
    if d.get("estimates", "alpha_gap") is not None:
        rows.append(d.row("α (drops) − α (mean loss)", "both from the same resamples; the "
                          "model reads one α from both", est("alpha_gap"), ci("alpha_gap"),
                          theory=Cell(0.0)))
    for r in rows:
        r.level = d.get("level", default=0.95)
    return rows


def _lead_without_truth(d: Doc, rows) -> str:
    """The two α of real data against each other, in one sentence."""
    mean, drops = rows[0], rows[1]
    said = (f"α from where tokens drop, {_with_ci(drops)}, against α from the mean loss, "
            f"{_with_ci(mean)}")
    gap = rows[3] if len(rows) > 3 else None
    if gap is not None and gap.inside is not None:
        return (f"{said}: their difference {_with_ci(gap)} "
                + ("holds 0, as the model predicts." if gap.inside
                   else "excludes 0: the two readings of α disagree."))
    a, b = mean.interval, drops.interval
    if a is None or b is None:
        return said + "."
    overlap = a[0] <= b[1] and b[0] <= a[1]
    return f"{said}: the intervals {'overlap' if overlap else 'do not overlap'}."


def _with_ci(row) -> str:
    ci = row.interval
    return row.value.text + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def _notes(d: Doc) -> list[str]:
    """Counts, the classifier's calibration, the learning order, the truth's extras and the
    analysis' own warnings."""
    w = _words(d.at("axis"))
    x = d.at("x")
    docs = d.get("n_documents")
    boot = d.get("n_bootstrap")
    dropped = d.get("n_failed_bootstrap")
    notes = [f"{d.at('n_tokens'):,} tokens" + (f" in {docs:,} documents" if docs else "")
             + f" × {len(x)} {w['many']} ({fmt(x[0], 3)} … {fmt(x[-1], 3)}); intervals: "
             f"{d.get('level', default=0.95):.0%} bootstrap over {d.get('unit')}s"
             + (f" ({boot} resamples" + (f", {dropped} empty ones dropped" if dropped else "")
                + ")" if boot is not None else "")]
    power = d.get("estimates", "alpha_power", "value")
    if power is not None:
        notes.append(f"α from a pure power law A·{w['x']}^-e of the mean loss: {fmt(power)} "
                     "(it ignores the loss floor, so it reads α low)")
    counts, cal = d.get("classification", "counts") or {}, d.get("classification", "calibration")
    if counts and cal:
        notes.append(f"curves: {counts['sharp']:,.0f} sharp, {counts['gradual']:,.0f} gradual, "
                     f"{counts['flat']:,.0f} flat; the ΔBIC threshold {fmt(cal['threshold'], 3)} "
                     f"calls {cal['false_alarm']:.2%} ± {cal['false_alarm_se']:.2%} of "
                     f"{cal['n_null']:,} step-free curves sharp")
    order = d.get("emergence", "order")
    if order:
        notes.append(f"learning order of {order['n']:,} sharp tokens: Spearman "
                     f"{fmt(order['spearman'], 3)} between drop {w['one']} and frequency; "
                     f"frequency ∝ {w['x']}^-b with b = {fmt(order['exponent'], 3)} (model: "
                     f"{fmt(order['predicted_exponent'], 3)})")
    truth = d.get("truth")
    if truth and truth.get("recall") is not None:
        notes.append(f"against the generator: monogenic tokens dropping inside the columns "
                     f"called sharp {truth['recall']:.1%}, in their true gap "
                     f"{truth['gap_accuracy']:.1%}; polygenic tokens called sharp "
                     f"{truth['polygenic_called_sharp']:.1%} (they raise the monogenic "
                     "fraction)")
    notes += [f"warning: {w}" for w in d.get("warnings") or []]
    return notes


def tokens_block(item) -> list[Block]:
    """One per-token analysis: its figures, its α and monogenic fraction, notes."""
    d = Doc(item.doc)
    truth = d.get("truth")
    w = _words(d.at("axis"))
    title = f"Per-token losses: {d.at('n_tokens'):,} tokens × {len(d.at('x'))} {w['many']}"
    if truth:
        title += (f" (generated: α = {truth['alpha']:g}, monogenic share "
                  f"{truth['monogenic']:g})")
    block = Block(title, str(item.path), str(item.json_file))
    _figures(d, block)
    block.rows = _rows(d, bool(truth))
    if not truth:
        block.lead = _lead_without_truth(d, block.rows)
    if d.get("estimates", "alpha_gap") is None:
        block.notes.append("the JSON has no /estimates/alpha_gap (written before it was "
                           "added): the two α are compared by their intervals alone")
    block.notes += _notes(d)
    return [block]
