"""``quanta``: one command, a subcommand per capability.

A subcommand exists once its module in ``quanta.commands`` exists. Expected failures are
the project's exception types (``common.errors.QuantaError``: bad input, a corrupt file, a
missing extra, a resource limit, a failed run), the operating system's refusals (a path
that cannot be read or written, a full disk) and running out of memory: one line on stderr,
exit status 2 (1 for a failed run); a usage error is one line too. Anything else is a bug
and keeps its traceback. Ctrl-C exits quietly with 130, after the command's staged outputs
are discarded (``quanta.io.run_command``: nothing half-written is left).

Building the parser imports every command module but no optional dependency: ``parity``
and ``qdg`` are offered without PyTorch and name the missing extra when run.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from common.errors import MissingExtraError, QuantaError
from quanta.io import declare_paths, outputs_together, prefix, run_command

#: Subcommands in layer order; a name whose module is missing is simply not offered.
COMMANDS = ("theory", "simulate", "fit", "tokens", "parity", "qdg", "sweep", "report")


def available_commands():
    """The command modules that exist, imported, in layer order."""
    mods = []
    for name in COMMANDS:
        if importlib.util.find_spec(f"quanta.commands.{name}") is not None:
            mods.append(importlib.import_module(f"quanta.commands.{name}"))
    return mods


def run_demo(args) -> int:
    """The README's main job: every layer's demo, written into ``--out``, and last the
    page of them all (``report.html``)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for mod in available_commands():
        demo = getattr(mod, "demo", None)
        if demo is None:
            continue
        name = mod.__name__.rsplit(".", 1)[-1]
        print(f"[demo] {name} ...", flush=True)
        try:
            with outputs_together():          # each layer's files committed together
                written = demo(out) or []
        except MissingExtraError as err:  # e.g. no PyTorch: the other layers still run
            print(f"[demo]   skipped: {err}", flush=True)
            continue
        for path in written:
            print(f"[demo]   wrote {path}", flush=True)
    print(f"[demo] done: results in {out}/")
    if (out / "report.html").is_file():
        print(f"[demo] report: {out / 'report.html'}")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, naming the (sub-)command and where
    its help is."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="quanta",
        description="The Quantization Model of Neural Scaling: theory, Monte Carlo, fits, "
                    "training and QDG.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for mod in available_commands():
        mod.add_parser(sub)
    demo = sub.add_parser("demo", help="run the small end-to-end demo of every layer (CPU)")
    demo.add_argument("--out", default="quanta-out", help="output folder (default quanta-out)")
    demo.set_defaults(func=run_demo, outputs_together=False)
    declare_paths(demo, folders=("out",))
    _mark_parsers(parser)
    return parser


def _mark_parsers(parser: argparse.ArgumentParser) -> None:
    """Set ``parser`` in the defaults of every (sub-)parser to itself: the parsed namespace
    then names the innermost one, whose ``error`` reports a flag it does not take."""
    parser.set_defaults(parser=parser)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _mark_parsers(child)


def with_default_actions(argv: list[str]) -> list[str]:
    """``quanta fit DATA …`` as ``quanta fit curve DATA …``: a command module with a
    ``DEFAULT_ACTION`` gets it inserted when the word after the command is none of its
    ``ACTIONS`` (nor ``-h``/``--help``)."""
    if len(argv) < 2:
        return argv
    for mod in available_commands():
        default = getattr(mod, "DEFAULT_ACTION", None)
        if default and argv[0] == mod.__name__.rsplit(".", 1)[-1] and \
                argv[1] not in (*mod.ACTIONS, "-h", "--help"):
            return [argv[0], default, *argv[1:]]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and not argv[0].startswith("-") else ""
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(with_default_actions(argv))
        if extra:  # refused by the sub-command that was given them, in its own words
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
        command = args.command
        return run_command(args)
    except QuantaError as err:
        return _fail(command, err, err.exit_status)
    except OSError as err:   # the file system's refusals: missing, unwritable, full
        return _fail(command, err, 2)
    except MemoryError as err:
        return _fail(command, MemoryError(f"out of memory ({err or 'an allocation failed'}): "
                                          "lower the sizes of the run"), 2)
    except KeyboardInterrupt:
        return _interrupted(command)
    except SystemError as err:     # Ctrl-C inside a compiled (Numba) kernel surfaces so
        if _caused_by_interrupt(err):
            return _interrupted(command)
        raise


def _caused_by_interrupt(err: BaseException | None) -> bool:
    """Whether ``err`` was raised because of a KeyboardInterrupt (its chain holds one)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _interrupted(command: str) -> int:
    print(f"{prefix(command)}: interrupted", file=sys.stderr)
    return 130


def _fail(command: str, err: BaseException, status: int) -> int:
    """Print the error's first line as ``quanta COMMAND: error: …`` (``quanta: error: …``
    before a command is known) and return ``status``."""
    text = str(err).strip()
    if isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror or text}"
    elif isinstance(err, OSError) and err.strerror:
        text = f"{err.strerror} ({_os_hint(err)})"
    msg = text.splitlines()[0] if text else type(err).__name__
    print(f"{prefix(command)}: error: {msg}", file=sys.stderr)
    return status


def _os_hint(err: OSError) -> str:
    """What to do about an OSError that names no file (a full disk, mostly)."""
    import errno

    return {errno.ENOSPC: "the disk is full: free space and run again; nothing was "
                          "replaced",
            errno.EDQUOT: "over the disk quota: free space and run again"}.get(
        err.errno, "a file operation failed")


if __name__ == "__main__":
    raise SystemExit(main())
