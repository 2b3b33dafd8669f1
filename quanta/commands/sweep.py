"""``quanta sweep``: run one spec's grid of jobs on this machine or on Ray, see where it
stands, and collect every job's summary numbers into one table.

    quanta sweep run SPEC --out DIR [--backend local|ray] [--address ADDR] [--max-parallel N]
    quanta sweep status DIR [--json FILE]
    quanta sweep collect DIR [--table FILE.parquet] [--json FILE]
    quanta sweep example [NAME [DEST]]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from common.errors import InputError, RunError
from quanta.commands.parity import EXIT_PAUSED
from quanta.io import add_output_args, count, declare_paths, say, write_json

EXAMPLES = Path(__file__).resolve().parents[1] / "sweep" / "examples"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep", help="run a grid of jobs from one spec (locally or on Ray), resumable",
        description="Sweeps: a spec file names a command, its fixed arguments and the grid "
                    "axes; every combination is a job in its own folder under DIR.")
    sub = p.add_subparsers(dest="sweep_command", required=True, metavar="ACTION")

    r = sub.add_parser("run", help="run the jobs of SPEC not yet done in DIR",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run every job of SPEC that DIR does not hold finished "
                                   "(a re-run skips finished jobs and resumes interrupted "
                                   "parity runs).",
                       epilog="example:\n  quanta sweep example simulate-grid spec.toml\n"
                              "  quanta sweep run spec.toml --out sweep-out\n"
                              "  quanta sweep run spec.toml --out sweep-out --backend ray "
                              "--address auto")
    r.add_argument("spec", metavar="SPEC", help="the spec file (.toml, or .yaml with pyyaml)")
    r.add_argument("--out", required=True, metavar="DIR", help="the sweep's folder")
    r.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local: a process pool here (default); ray: Ray tasks")
    r.add_argument("--address", default=None, metavar="ADDR",
                   help="(ray) the cluster to join, e.g. auto or ray://HEAD:10001 "
                        "(default: start Ray on this machine)")
    r.add_argument("--max-parallel", type=count(1), default=None, metavar="N",
                   help="jobs at a time (default: the CPU count here; on Ray, what the "
                        "cluster's resources allow)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_output_args(r, plot=False)
    declare_paths(r, inputs=("spec",), folders=("out",))
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("status", help="each job's state and error")
    s.add_argument("dir", metavar="DIR")
    add_output_args(s, plot=False)
    declare_paths(s, inputs=("dir",))
    s.set_defaults(func=cmd_status)

    c = sub.add_parser("collect", help="one parquet table of every finished job's numbers")
    c.add_argument("dir", metavar="DIR")
    c.add_argument("--table", default=None, metavar="FILE",
                   help="where to write the parquet table (default DIR/summary.parquet)")
    add_output_args(c, plot=False)
    declare_paths(c, inputs=("dir",), files=("table",))
    c.set_defaults(func=cmd_collect)

    e = sub.add_parser("example", help="list the shipped example specs, or copy one")
    e.add_argument("name", nargs="?", metavar="NAME")
    e.add_argument("dest", nargs="?", metavar="DEST", help="where to copy it (default NAME.toml)")
    declare_paths(e, files=("dest",))
    e.set_defaults(func=cmd_example)


def cmd_run(args) -> int:
    from quanta import sweep

    spec = sweep.load(args.spec)
    say(f"sweep {args.out}: {len(spec.jobs)} {spec.command} jobs on {args.backend}",
        args.json)
    result = sweep.run(spec, args.out, backend=args.backend, max_parallel=args.max_parallel,
                       address=args.address, progress=not args.no_progress)
    write_json(result, args.json)
    say(f"{result['jobs']} jobs: {result['skipped']} done before, {result['done']} done now, "
        f"{result['failed']} failed, {result['paused']} paused", args.json)
    if result["failed"]:
        raise RunError(f"{result['failed']} of {result['jobs']} jobs failed (`quanta sweep "
                       f"status {args.out}` lists their errors; a re-run retries them)")
    if result["paused"]:
        say(f"paused jobs continue from their checkpoints when you run the same command "
            f"again", args.json)
        return EXIT_PAUSED
    return 0


def cmd_status(args) -> int:
    from quanta.sweep import sweep_status

    doc = sweep_status(args.dir)
    write_json(doc, args.json)
    lines = [f"{'state':<8} {'tries':>5} {'wall s':>8}  job"]
    for j in doc["jobs"]:
        wall = "" if j["wall_s"] is None else f"{j['wall_s']:.1f}"
        lines.append(f"{j['state']:<8} {j['attempts']:>5} {wall:>8}  {j['job']}"
                     + (f"\n{'':24}{j['error']}" if j["error"] else ""))
    lines.append(f"{doc['command']}: " + ", ".join(f"{n} {s}" for s, n in doc["counts"].items()
                                                   if n))
    say("\n".join(lines), args.json)
    return 0


def cmd_collect(args) -> int:
    from quanta.sweep import collect, write_table

    table, not_done = collect(args.dir)
    dest = Path(args.table) if args.table else Path(args.dir) / "summary.parquet"
    write_table(table, dest)
    write_json({"sweep": str(args.dir), "table": str(dest),
                "rows": table.to_dict(orient="records"), "not_done": not_done}, args.json)
    text = table.to_string(max_rows=20, max_cols=12) if len(table) else "(no finished job)"
    say(f"{text}\nwrote {dest}: {len(table)} rows × {table.shape[1]} columns"
        + (f"; {len(not_done)} jobs not done" if not_done else ""), args.json)
    return 0


def cmd_example(args) -> int:
    names = sorted(p.stem for p in EXAMPLES.glob("*.toml"))
    if args.name is None:
        for name in names:
            first = (EXAMPLES / f"{name}.toml").read_text().splitlines()[0].lstrip("# ")
            print(f"{name:<16} {first}")
        return 0
    if args.name not in names:
        raise InputError(f"no example spec {args.name!r} (one of: {', '.join(names)})")
    dest = Path(args.dest or f"{args.name}.toml")
    if dest.exists():
        raise InputError(f"{dest} exists; give another DEST")
    shutil.copyfile(EXAMPLES / f"{args.name}.toml", dest)
    print(f"wrote {dest}")
    return 0
