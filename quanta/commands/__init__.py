"""One module per subcommand.

Each module defines ``add_parser(subparsers)``, which registers its subparser and sets
``func`` (called with the parsed namespace, returns an exit code or None), and may define
``demo(out_dir: pathlib.Path) -> list[pathlib.Path]``, its part of ``quanta demo``.
A module with actions as sub-commands may name one the default: ``ACTIONS`` (the action
names) and ``DEFAULT_ACTION`` (inserted by ``quanta.cli.with_default_actions`` when the word
after the command is none of them, as in ``quanta fit DATA …``). Command modules import no
optional dependency at module level: the parser is built without PyTorch.
"""
