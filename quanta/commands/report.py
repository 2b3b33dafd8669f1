"""``quanta report``: one self-contained HTML page of every predicted-vs-observed comparison
in saved results.

    quanta report INPUTS… [--out report.html] [--title TEXT] [--screenshot PNG]

INPUTS are JSON files written by ``quanta … --json`` (theory, simulate, fit, parity analyze,
qdg toy/parity, tokens analyze), parity run folders, ``qdg bias`` folders, or folders holding any of these.
Inputs it cannot read are named on the page and on stderr; the page is still written when
at least one input could be read.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from quanta.io import declare_paths, say


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="one HTML page of every predicted-vs-observed comparison in saved results",
        description="Read the JSON files and run folders the other commands write and make one "
                    "self-contained HTML page (figures as inline SVG, no network needed): the "
                    "model's predictions, Monte Carlo against theory, fits, parity, QDG and "
                    "per-token losses, each with its figures, a table of exponents against "
                    "theory and one sentence on agreement. Example: quanta report quanta-out "
                    "--out report.html")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="JSON files, parity run folders, qdg bias folders, or folders of them")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--title", default="quanta report", help="the page's title")
    p.add_argument("--screenshot", metavar="PNG", default=None,
                   help="also save a PNG of the top of the page, rendered by Debian's chromium "
                        "(needs the test extra's playwright)")
    declare_paths(p, inputs=("inputs",), files=("out", "screenshot"))
    p.set_defaults(func=run)


def run(args) -> int:
    from quanta import report

    command = "quanta report " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if sys.argv[1:2] == ["report"] else None
    page = report.write(args.inputs, args.out, command=command, title=args.title)
    for u in page.unreadable:
        print(f"quanta report: not read: {u.path}: {u.reason}", file=sys.stderr)
    say(f"wrote {args.out} ({_count(len(page.sections), 'section')}, "
        f"{_count(page.n_figures, 'figure')}"
        + (f", {_count(len(page.unreadable), 'input')} not read" if page.unreadable else "")
        + ")")
    if args.screenshot:
        from quanta.report.browser import screenshot

        screenshot(args.out, args.screenshot)
        say(f"wrote {args.screenshot}")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def demo(out_dir: Path) -> list[Path]:
    """The page of everything the other demos wrote (run last): out_dir/report.html."""
    from quanta.report.demo import demo_report

    return demo_report(Path(out_dir))
