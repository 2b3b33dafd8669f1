"""One module per subcommand.

Each module defines ``add_parser(subparsers)``, which registers its subparser and sets
``func`` (called with the parsed namespace, returns an exit code or None), and may define
``demo(out_dir: pathlib.Path) -> list[pathlib.Path]``, its part of ``quanta demo``.
"""
