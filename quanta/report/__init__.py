"""One self-contained HTML page of every predicted-vs-observed comparison in a set of saved
results (``quanta report INPUTS… --out report.html``).

The inputs are what the other commands write (their ``--json`` files and run folders); each
is recognised by its content (:mod:`quanta.report.inputs`), drawn again from its data by
the layers' own plot functions as inline SVG, tabled against the theory with one sentence on
agreement, and placed in the section a reader looks for it in. Inputs the report cannot read
are named on the page (and returned, for the command to print), never dropped. The page is
rendered by Jinja2 from ``templates/report.html.j2``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.errors import InputError, QuantaError
from common.files import atomic_write
from quanta.report import fits, parity, predictions, qdg, tokens
from quanta.report.content import Section
from quanta.report.inputs import Unreadable, read_inputs
from quanta.report.provenance import provenance

#: the sections in the order a reader thinks: (key, title, introduction, kind → builder)
SECTIONS = (
    ("predictions", "The model's predictions",
     "What the quantization model predicts: the scaling exponents and the exact expected "
     "losses for the given α.", {"theory": predictions.theory_block}),
    ("montecarlo", "Monte Carlo against exact theory",
     "Quanta learned by simulated training against the theory's exact expectation; the "
     "exponent fitted in the asymptotic window against the predicted one.",
     {"simulate": predictions.simulate_block}),
    ("fits", "Fits: intervals, residuals, extrapolation and the model's reading",
     "Scaling laws fitted with bootstrap intervals, their residuals, a check on held-out "
     "sizes, and the α the quantization model reads from the exponents.",
     {"fit": fits.fit_block, "fit-groups": fits.groups_block, "fit-regimes": fits.regimes_block,
      "consistency": fits.consistency_block, "literature": fits.literature_block,
      "sizes": fits.sizes_block}),
    ("parity", "Multitask sparse parity",
     "Networks trained on multitask sparse parity: the exponents of loss against parameters, "
     "steps and data, and the learning of each subtask, against the theory.",
     {"parity": parity.parity_block, "parity-both": parity.parity_both_block,
      "parity-runs": parity.runs_block, "parity-alphas": parity.alphas_block}),
    ("qdg", "QDG and its bias",
     "Quanta discovery from gradients: clusters of per-sample gradients, the α read from "
     "their sizes against the α that made the data, and the bias measured on toy data.",
     {"qdg-toy": qdg.toy_block, "qdg-parity": qdg.parity_block,
      "qdg-networks": qdg.networks_block, "qdg-bias": qdg.bias_block}),
    ("tokens", "Per-token losses of language models",
     "Losses of every token of a text under each model of a family (or each checkpoint): the "
     "mean loss's α, the distribution of per-token losses, tokens that drop sharply at one "
     "size (monogenic) or gradually (polygenic), and the α read from where they drop.",
     {"tokens": tokens.tokens_block}),
)

#: errors that mean an input's content is not the format its kind promised
_FORMAT_ERRORS = (KeyError, IndexError, TypeError, ValueError, QuantaError)


@dataclass
class Page:
    sections: list[Section]
    unreadable: list[Unreadable]
    provenance: dict
    title: str = "quanta report"
    n_figures: int = field(init=False, default=0)

    def __post_init__(self):
        self.n_figures = sum(len(b.figures) + sum(len(f) for _, f in b.more)
                             for s in self.sections for b in s.blocks)


def _blocks(builder, item, unreadable: list) -> list:
    """The builder's blocks for ``item``; an input whose content does not hold what its
    kind promised is named as unreadable, with the reason, instead."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        return builder(item)
    except _FORMAT_ERRORS as err:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        reason = str(err).splitlines()[0] if str(err) else ""
        unreadable.append(Unreadable(str(item.path), f"read as '{item.kind}' but its content "
                                     f"does not fit: {type(err).__name__} {reason}".rstrip()))
        return []


def build(paths, command: str | None = None, title: str = "quanta report") -> Page:
    """The page for these inputs (files and folders)."""
    inputs, unreadable = read_inputs(paths)
    sections = []
    for key, name, intro, builders in SECTIONS:
        section = Section(key, name, intro)
        for item in inputs:
            if item.kind in builders:
                section.blocks += _blocks(builders[item.kind], item, unreadable)
        if section.blocks:
            sections.append(section)
    if not sections:
        named = "; ".join(f"{u.path}: {u.reason}" for u in unreadable) or "no inputs"
        raise InputError(f"nothing to report: {named}")
    return Page(sections, unreadable, provenance(inputs, command), title)


def render(page: Page) -> str:
    """The page as one HTML document."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("quanta.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["svg"] = lambda text: jinja2.utils.markupsafe.Markup(text)
    return env.get_template("report.html.j2").render(page=page)


def write(paths, out, command: str | None = None, title: str = "quanta report") -> Page:
    """Build the page for ``paths`` and write it to ``out`` (atomically)."""
    out = Path(out)
    if out.is_dir():
        raise InputError(f"--out {out}: a folder; give the HTML file to write")
    page = build(paths, command, title)
    atomic_write(out, render(page).encode())
    return page
