"""The ``quanta`` command: one entry point whose subcommands sit on the four layers.

The science lives in the top-level packages ``theory`` → ``simulate`` → ``fit`` →
``empirical``; this package only parses arguments, calls them and writes results.
"""
