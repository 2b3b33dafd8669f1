"""Sweeps: one spec (a command, fixed arguments, grid axes) run as many jobs, on this
machine (a process pool) or on Ray, each job in its own folder, resumable, and collected
into one table. ``quanta sweep run|status|collect`` drive it; see docs/sweeps.md."""
from .engine import collect, read_sweep, run, sweep_status, write_table
from .registry import REGISTRY, SweepCommand, register
from .spec import Job, Spec, from_dict, load, pack

__all__ = ["load", "from_dict", "Spec", "Job", "pack", "run", "sweep_status", "collect",
           "write_table", "read_sweep", "register", "SweepCommand", "REGISTRY"]
