"""The report's part of ``quanta demo``: a fit of a loss table as a user would make one, then
the page of everything the demos wrote."""
from __future__ import annotations

import json
from pathlib import Path

#: committed results the demo's page shows beside what the demo computes
RESULTS = Path(__file__).resolve().parents[2] / "results"

#: what the other demos write (glob patterns: the parity demo names its JSON after the runs
#: it draws, gpu_fig2_NS.json and cpu_checks.json today), in the page's reading order (the
#: shipped GPU run first: the parity demo's headline)
DEMO_FILES = ("theory.json", "simulate.json", "fit_table.json", "fit.json", "parity/gpu_*.json",
              "parity/*.json", "qdg_toy.json", "qdg_parity.json", "tokens-*.json")


def loss_table(out_dir: Path) -> Path | None:
    """A loss table as a user would hold one: the simulate demo's Monte Carlo L(D) over its
    asymptotic window, with the loss the cut at K removes (ε_K) added back, so that it
    follows the infinite-K power law. None without simulate.json."""
    import theory

    path = out_dir / "simulate.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())["D"]
    cfg, (lo, hi) = doc["config"], doc["exponent_window"]
    eps = float(theory.truncation_offset(cfg["alpha"], cfg["K"]))
    lines = ["D,loss"] + [f"{p['x']:.10g},{p['mean'] + eps:.10g}" for p in doc["points"]
                          if lo <= p["x"] <= hi]
    table = out_dir / "loss_table.csv"
    from common.files import atomic_write

    atomic_write(table, ("\n".join(lines) + "\n").encode())
    return table


def demo_report(out_dir: Path) -> list[Path]:
    """Fit the demo's loss table with ``quanta fit``, then write out_dir/report.html."""
    from quanta import report
    from quanta.cli import main

    written = []
    table = loss_table(out_dir)
    if table is not None:
        args = ["fit", str(table), "--x", "D", "--y", "loss", "--json",
                str(out_dir / "fit_table.json")]
        print("[demo]   $ quanta " + " ".join(args), flush=True)
        if main(args) == 0:
            written += [table, out_dir / "fit_table.json"]
    inputs = list(dict.fromkeys(path for pattern in DEMO_FILES
                                for path in sorted(out_dir.glob(pattern)) if path.is_file()))
    if (RESULTS / "qdg" / "bias").is_dir():
        inputs.append(RESULTS / "qdg" / "bias")
    page = report.write(inputs, out_dir / "report.html", command=f"quanta demo --out {out_dir}")
    for u in page.unreadable:
        print(f"[demo]   report: not read: {u.path}: {u.reason}", flush=True)
    return written + [out_dir / "report.html"]
