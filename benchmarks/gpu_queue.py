"""The queue of the paper's sweeps for GPU calls: which plan comes next, how long each
takes, and one call's worth of them (``next``), each finished run exported and packed for
the trip back through $OUT.

    python benchmarks/gpu_queue.py estimate            # plan --estimate
    python benchmarks/gpu_queue.py next --seconds 540  # what gpu_session.sh next runs
    python benchmarks/gpu_queue.py ingest DIR          # unpack a call's $OUT into the checkout
    python benchmarks/gpu_queue.py unmeasured          # exit 0: a window starts with a menu

State between calls on fresh machines lives only in the checkout: a plan is done when
``results/parity/gpu_<export>/`` holds its export (committed after ``ingest``), or when its
packed export ``gpu_<export>.tar*`` lies in the carry folder (``.gpu/``, git-ignored, sent
with ``carry: [".gpu"]``). A plan that a call had to pause ships its resume state as
``<plan>.resume.tar`` (in 15 MiB pieces ``.part-aa``, … when larger) if it fits what comes
back from $OUT (8 files, 16 MiB each, 64 MiB together, less what the call has already put
there); in the carry folder (``ingest`` puts it there) the next call resumes it. A plan
whose resume state cannot come back is started only when it is predicted to finish within
the call, and so are the plans marked ``one_call`` (``fig2_NS_speed``: the Figure-2 sweep
end to end, timed). Speeds for the estimates and the choice of step come from this call's
menu (``$OUT/menu.json``) and ``benchmarks/gpu_speed.json`` (``ingest`` copies a menu
there; a variant this call's menu measured counts as measured here), else the speed
measured on 2026-12-04 with the eager bf16 step.
"""
from __future__ import annotations

import argparse
import functools
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEED_FILE = ROOT / "benchmarks" / "gpu_speed.json"
BENCHMARKS_FILE = ROOT / "BENCHMARKS.md"
MiB = 2 ** 20
#: the device tool's limits on what comes back from $OUT: files, bytes per file, in all
MAX_FILES, MAX_FILE_BYTES, MAX_OUT_BYTES = 8, 16 * MiB, 64 * MiB
PIECE = 15 * MiB
#: bytes of $OUT kept free for what a call writes after packing (next.log)
LOG_MARGIN = 1 * MiB
#: seconds kept free for start-up, export and packing after a plan's training, and the
#: least training time worth starting a plan for (``--reserve``, ``--min-train``)
RESERVE_S, MIN_TRAIN_S = 40.0, 30.0
#: seconds a training command needs besides its steps, compilation and evaluations
#: (start-up, the test set, checkpoints)
START_S = 10.0
#: least seconds of compilation and capture per step kind (+ compile_fwd, + autotune): a
#: menu that compiled a variant after its sibling measured a cached compilation
COMPILE_FLOOR_S = {"eager": 0.0, "manual": 0.0, "graphs": 1.0, "compiled": 15.0,
                   "compiled_graphs": 15.0, "compile_fwd": 10.0, "autotune": 30.0,
                   "triton": 10.0}
#: evaluations before any menu measured them, in hidden-unit-samples per second: 66 ms
#: for 72 networks (H = 6 444) on 500 × 1 000 test samples (the fig10 plan's log of
#: 2026-12-04, module forward under bf16 autocast)
DEFAULT_EVAL_RATE = 6444 * 500_000 / 0.066
#: speed before any menu, in hidden-unit-samples per second (hidden units × batch / seconds
#: per step): the Figure-2 run of 2026-12-04 (eager step, bf16, compiled forward), 2.4 ms
#: per step for 3 805 units at batch 20 000
DEFAULT_SPEED = dict(step="eager", precision="bf16", compile_forward=True, options=[],
                     rate=3805 * 20_000 / 2.4e-3, warmup_s=10.0,
                     source="fig2_NS run of 2026-12-04 (2.2-2.6 ms/step), no menu")

#: the CPU queue's default: plain eager float32 steps
TINY_SPEED = dict(step="eager", precision="fp32", compile_forward=False, options=[], rate=1e6,
                  warmup_s=1.0, source="CPU default")

FIG2 = "--n-tasks 500 --n-bits 100 --k 3 --batch 20000"
FIG2_NS = f"{FIG2} --steps 200000 --eval-points 100 --alpha 0.4 --width-grid 9 500 30"
#: steps of the D sweeps: the paper's minimum test loss came before step 9 500 even at the
#: largest D (5·10^6, 38 epochs); 25 000 steps are 2.6 times that (see BENCHMARKS.md)
D_STEPS = 25_000
ALPHAS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def _plans() -> list[dict]:
    """The queue. ``export``: the options of the export; ``export_as``: its name when not
    the plan's; ``final``: keep the last checkpoint; ``one_call``: start only when
    predicted to finish in the call; ``timed``: report its wall time (ingest writes it into
    BENCHMARKS.md); ``beat_s``: start only when a measured variant is predicted to take
    less than this (a timing worth repeating only with a faster step)."""
    alpha_ns = "--steps 100000 --eval-points 100 --width-grid 9 300 12 --seeds 0 1 2 --checkpoints 5"
    alpha_d = f"--steps {D_STEPS} --eval-points 60 --widths 500 --D-grid 10000 5000000 12 --checkpoints 3"
    return [
        # the timed run keeps 2 log-spaced checkpoints (steps 0, 1 and the last) rather
        # than 20: the export keeps the last only, and each costs ~0.3 s of saving
        dict(name="fig2_NS_speed", args=f"{FIG2_NS} --checkpoints 2", export="--no-accuracy",
             final=True, export_as="fig2_NS_v2", one_call=True, timed=True),
        # the Figure-2 sweep timed again once a step beats the 164 s of fig2_NS_speed
        # (BENCHMARKS.md, 2026-12-04; issue #14's target: 120 s)
        dict(name="fig2_NS_speed3", args=f"{FIG2_NS} --checkpoints 2", export="--no-accuracy",
             final=True, export_as="fig2_NS_v3", one_call=True, timed=True, beat_s=164.0),
        dict(name="fig2_NS", args=f"{FIG2_NS} --checkpoints 20", export="--no-accuracy",
             final=True),
        dict(name="fig2_D", args=f"{FIG2} --steps {D_STEPS} --eval-points 60 --alpha 0.4 "
             "--widths 500 --D-grid 10000 5000000 30 --checkpoints 3", export="--no-accuracy"),
        *[dict(name=f"fig10_NS_{a:g}_{b:g}", args=f"{FIG2} --alphas {a:g} {b:g} {alpha_ns}",
               export="--no-accuracy --max-evals 50") for a, b in zip(ALPHAS[::2], ALPHAS[1::2])],
        *[dict(name=f"D_alpha{a:g}", args=f"{FIG2} --alpha {a:g} {alpha_d}",
               export="--no-accuracy") for a in ALPHAS],
    ]


#: the CPU-sized queue that tests this machinery (CPU=1)
TINY = "--n-tasks 6 --n-bits 8 --k 3 --batch 64 --test-per-task 8 --threads 1"
TINY_PLANS = [
    dict(name="tiny_speed", args=f"{TINY} --alpha 0.4 --widths 4 8 --steps 300 --eval-points 8 "
         "--checkpoints 2", export="--no-accuracy", final=True, export_as="tiny_speed_v2",
         one_call=True, timed=True),
    dict(name="tiny_NS", args=f"{TINY} --alphas 0.2 0.6 --widths 4 8 --seeds 0 1 --steps 1500 "
         "--eval-points 12 --checkpoints 3", export="--no-accuracy --max-evals 6", final=True),
    dict(name="tiny_D", args=f"{TINY} --alpha 0.4 --widths 8 --D 50 400 --steps 400 "
         "--eval-points 10 --checkpoints 2", export="--no-accuracy"),
]


def plans(tiny: bool = False) -> list[dict]:
    return TINY_PLANS if tiny else _plans()


def export_name(plan: dict) -> str:
    return "gpu_" + plan.get("export_as", plan["name"])


def plan_config(plan: dict):
    """The RunConfig of a plan's ``quanta parity train`` arguments (a fresh copy)."""
    from empirical.parity.config import RunConfig
    return RunConfig.from_dict(_parsed_config(plan["args"]).to_dict())


@functools.lru_cache(maxsize=None)
def _parsed_config(args: str):
    from quanta.commands.parity import add_parser, config_from_args
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="c"))
    return config_from_args(parser.parse_args(["parity", "train", "--out", "x", *args.split()]))


def resume_bytes(config) -> int:
    """Bytes of a paused run's packed resume state (a tar of config.json and
    checkpoints/resume.pt): the model and Adam's two moments (12 bytes per parameter,
    float32), the metrics at their full size (test loss and accuracy, float32, per network ×
    evaluation × subtask; float64 means per network × evaluation, the per-network columns,
    the frequencies), and 64 KiB for the pickled config and network table, zip and tar
    headers. tests/test_gpu_session_script.py checks it against real resume states."""
    from empirical.parity.train import log_steps, network_table
    nets = network_table(config)
    M, T, H = len(nets), config.task.n_tasks, sum(n["width"] for n in nets)
    E = len(log_steps(config.train.steps, config.train.eval_points))
    params = H * (config.task.n_tasks + config.task.n_bits + 3) + 2 * M
    alphas = len(config.task.alpha_list)
    metrics = 8 * M * E * T + 20 * M * E + 16 * E + 40 * M + 8 * T * (1 if alphas == 1 else M)
    return 12 * params + metrics + 64 * 1024 + 200 * M


def plan_size(plan: dict) -> dict:
    """Networks, hidden units, steps, hidden-unit-samples of the steps (units × batch ×
    steps: the work) and of the evaluations (evaluations × units × test samples), and the
    bytes of its resume state."""
    from empirical.parity.train import log_steps
    c = plan_config(plan)
    groups = len(c.task.alpha_list) * len(c.train.D or [0]) * len(c.train.seeds)
    H = groups * sum(c.model.widths)
    evals = len(log_steps(c.train.steps, c.train.eval_points))
    return dict(networks=groups * len(c.model.widths), hidden_units=H, steps=c.train.steps,
                unit_samples=H * c.train.steps * c.train.batch, evaluations=evals,
                eval_unit_samples=evals * H * c.task.n_tasks * c.train.test_per_task,
                resume_bytes=resume_bytes(c))


def _read_menu(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def load_speed(out: Path | None, tiny: bool = False) -> dict:
    """The measured speeds: this call's menu and the committed one (not for the CPU queue),
    a variant of this call's menu taking the place of the same in the committed one; else
    the default."""
    paths = ([out / "menu.json"] if out else []) + ([] if tiny else [SPEED_FILE])
    menus = [(p, m) for p, m in ((p, _read_menu(p)) for p in paths) if m and m.get("variants")]
    if not menus:
        return dict(TINY_SPEED if tiny else DEFAULT_SPEED)
    return dict(menus=[m for _, m in menus], source=", ".join(str(p) for p, _ in menus))


def merge_menus(new: dict, old: dict | None) -> dict:
    """A call's menu with the variants of the committed one (``old``) that it did not run
    or skipped, when both measured the same configuration: a window that times a few new
    variants keeps the earlier measurements of the rest (each variant says which menu
    measured it: ``menu_device``, ``menu_torch``)."""
    if not old or old.get("config") != new.get("config") or \
            old.get("hidden_units") != new.get("hidden_units"):
        return new
    ran = {v["name"] for v in new["variants"] if v.get("status") != "skipped"}
    kept = [dict(v, menu_device=v.get("menu_device", old.get("device")),
                 menu_torch=v.get("menu_torch", old.get("torch")))
            for v in old["variants"] if v["name"] not in ran]
    fresh = [v for v in new["variants"] if v["name"] in ran]
    merged = dict(new, variants=fresh + kept)
    if "evaluation" not in new and "evaluation" in old:
        merged["evaluation"] = old["evaluation"]
    return merged


def variant_ok(v: dict) -> bool:
    """A menu variant that ran and passes the check under today's tolerances (a menu
    written by older code may hold other ok flags; one without the gradient check is judged
    on its parameters alone)."""
    from parity_menu import passes
    return v.get("status") == "ok" and passes(v["check"], v["precision"])


def compile_floor(v: dict) -> float:
    from parity_menu import Variant
    var = Variant.of(v)
    return (COMPILE_FLOOR_S[var.step] + COMPILE_FLOOR_S["compile_fwd"] * var.compile_forward
            + sum(COMPILE_FLOOR_S[o] for o in ("autotune", "triton") if o in var.options))


def _eval_rate(menus: list[dict], v: dict) -> float:
    from empirical.parity.steps import LOOKUP_OPTIONS
    lookup = bool(set(LOOKUP_OPTIONS) & set(v.get("options") or []))
    for menu in menus:
        if "evaluation" in menu:
            return menu["evaluation"]["unit_samples_per_s"]["lookup" if lookup else "product"]
    return DEFAULT_EVAL_RATE


def measured_variants(speed: dict) -> list[dict]:
    """The checked variants of the speed's menus with their rates (hidden-unit-samples/s
    of steps and of evaluations) and warm-up seconds (at least :data:`COMPILE_FLOOR_S`); the
    first menu's measurement of a variant wins; the speed itself when it has no menu."""
    if "menus" not in speed:
        return [dict(speed, eval_rate=DEFAULT_EVAL_RATE,
                     name=_variant(speed).name)]
    seen, out = set(), []
    for menu in speed["menus"]:
        samples = menu["hidden_units"] * menu["config"]["train"]["batch"]
        for v in menu["variants"]:
            name = _variant(v).name
            if name in seen:
                continue
            seen.add(name)
            if variant_ok(v) and name not in speed.get("failed", ()):
                out.append(dict(v, name=name, rate=samples / v["s_per_step"],
                                warmup_s=max(v["check_and_warmup_s"], compile_floor(v)),
                                eval_rate=_eval_rate(speed["menus"], v)))
    return out or [dict(DEFAULT_SPEED, eval_rate=DEFAULT_EVAL_RATE,
                        name=_variant(DEFAULT_SPEED).name)]


#: ``unmeasured``'s exit status when there is nothing to measure (1 would be a crash)
ALL_MEASURED = 3


def _variant(d: dict):
    from parity_menu import Variant
    return Variant.of(d)


def predicted_seconds(v: dict, size: dict, fraction: float = 1.0) -> float:
    """Seconds of a plan's training command with variant ``v``: start-up, compilation,
    ``fraction`` of its steps and of its evaluations."""
    return (START_S + v.get("warmup_s", DEFAULT_SPEED["warmup_s"])
            + fraction * (size["unit_samples"] / v["rate"]
                          + size["eval_unit_samples"] / v.get("eval_rate", DEFAULT_EVAL_RATE)))


def speed_line(speed: dict) -> str:
    v = max(measured_variants(speed), key=lambda v: v["rate"])
    return (f"fastest checked variant {v['name']}: {v['rate']:.3g} hidden-unit-samples/s "
            f"(from {speed['source']})")


def choose_variant(speed: dict, size: dict) -> dict:
    """The measured variant that finishes ``size`` soonest (compilation and evaluations
    included; none that failed in this call, ``speed["failed"]``): step, precision,
    compile_forward, options, name and the predicted seconds."""
    v = min(measured_variants(speed), key=lambda v: predicted_seconds(v, size))
    var = _variant(v)
    return dict(var.fields(), name=var.name, seconds=predicted_seconds(v, size))


def _resume_or_restart(plan: dict, speed: dict, chosen: dict, run_dir: Path, call) -> dict:
    """The variant to train a plan with when ``run_dir`` holds a paused run: the one it was
    started with, unless starting afresh with ``chosen`` is predicted to finish sooner
    (then the paused run is deleted)."""
    import torch
    from empirical.parity.config import read_config
    from parity_menu import Variant
    t = read_config(run_dir / "config.json").train       # older configs' defaults filled in
    saved = Variant(t.step, t.precision, bool(t.compile), tuple(t.step_options or ()))
    resume = run_dir / "checkpoints" / "resume.pt"
    if not resume.exists():
        return dict(chosen, **saved.fields(), name=saved.name)
    left = 1 - torch.load(resume, map_location="cpu", weights_only=True)["step"] / t.steps
    same = [v for v in measured_variants(speed) if v["name"] == saved.name] or [DEFAULT_SPEED]
    t_resume = predicted_seconds(same[0], plan_size(plan), left)
    if chosen["seconds"] < t_resume and chosen["name"] != saved.name:
        call.say(f"{plan['name']}: starting afresh with {chosen['name']} "
                 f"(~{chosen['seconds']:.0f} s) rather than resuming {saved.name} "
                 f"(~{t_resume:.0f} s)")
        shutil.rmtree(run_dir)
        return chosen
    return dict(chosen, **saved.fields(), name=saved.name, seconds=t_resume)


def done(plan: dict, results: Path, carry: Path, out: Path | None = None) -> bool:
    exported = results / export_name(plan)
    if (exported / "config.json").exists() or any(exported.glob("*/config.json")):
        return True
    return any(d is not None and any(Path(d).glob(f"{export_name(plan)}.tar*"))
               for d in (carry, out))


def _shipping(size: dict, plan: dict, limit: int) -> str:
    if plan.get("one_call"):
        return "one call" + (", timed" if plan.get("timed") else "")
    return "ships" if size["resume_bytes"] <= limit - LOG_MARGIN else "cannot ship: one call"


def estimate(args) -> int:
    speed = load_speed(Path(args.out) if args.out else None, args.tiny)
    print(speed_line(speed))
    total = 0.0
    for plan in plans(args.tiny):
        size = plan_size(plan)
        v = choose_variant(speed, size)
        state = "done" if done(plan, args.results, args.carry) else \
            "paused (resume state carried)" if _carried_resume(plan, args.carry) else "to do"
        total += 0 if state == "done" else v["seconds"]
        print(f"{plan['name']:<16} {size['networks']:>3} networks  H = {size['hidden_units']:>5}  "
              f"{size['steps']:>6} steps  {v['seconds']:5.0f} s with {v['name']:<44} resume "
              f"state {size['resume_bytes'] / MiB:5.1f} MiB "
              f"({_shipping(size, plan, args.out_limit)})  [{state}]")
    print(f"left to do: about {total:.0f} s of device time (compilation, evaluations and "
          f"start-up included; add {RESERVE_S:.0f} s per call for export and packing)")
    return 0


def _carried_resume(plan: dict, carry: Path) -> list[Path]:
    return sorted(carry.glob(f"{plan['name']}.resume.tar*"))


class Call:
    """One ``next`` call: its deadline, the files it has put into $OUT, and its log."""

    def __init__(self, seconds: float, out: Path, log: Path, reserve: float = RESERVE_S,
                 limit: int = MAX_OUT_BYTES):
        self.deadline = time.monotonic() + seconds
        self.out, self.log, self.reserve, self.limit = out, log, reserve, limit

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def _files(self) -> list[Path]:
        return [p for p in self.out.rglob("*") if p.is_file()]

    def files(self) -> int:
        return len(self._files())

    def used(self) -> int:
        """Bytes in $OUT (next.log, menu.json, what was packed)."""
        return sum(p.stat().st_size for p in self._files())

    def room(self, size: int) -> bool:
        """Whether ``size`` bytes, in pieces, still fit what comes back from $OUT (files,
        bytes per file, bytes in all, :data:`LOG_MARGIN` kept for the log)."""
        pieces = 1 if size <= MAX_FILE_BYTES else -(-size // PIECE)
        return (self.files() + pieces <= MAX_FILES
                and self.used() + size + LOG_MARGIN <= self.limit)

    def say(self, text: str) -> None:
        print(text, flush=True)
        with open(self.log, "a") as fh:
            fh.write(text + "\n")

    def pack(self, src_dir: Path, names: list[str], stem: str) -> list[Path] | None:
        """Tar ``names`` (relative to ``src_dir``) into ``$OUT/stem`` (pieces of 15 MiB
        when larger than 16 MiB); None when they would break the limits (:meth:`room`)."""
        tmp = Path(tempfile.gettempdir()) / f"quanta-{os.getpid()}-{stem}"
        with tarfile.open(tmp, "w") as tar:
            for n in names:
                tar.add(src_dir / n, arcname=n)
        size = tmp.stat().st_size
        if not self.room(size):
            tmp.unlink()
            return None
        if size <= MAX_FILE_BYTES:
            return [Path(shutil.move(tmp, self.out / stem))]
        written = []
        with open(tmp, "rb") as fh:
            for i in range(-(-size // PIECE)):
                p = self.out / f"{stem}.part-{chr(97 + i // 26)}{chr(97 + i % 26)}"
                p.write_bytes(fh.read(PIECE))
                written.append(p)
        tmp.unlink()
        return written

    def summary(self) -> str:
        return (f"files in $OUT: {self.files()} of {MAX_FILES}, "
                f"{self.used() / MiB:.1f} of {self.limit / MiB:.0f} MiB")


def _train(plan: dict, variant: dict, run_dir: Path, limit: float, call: Call,
           device: str) -> int:
    """Train (or resume) a plan's run for at most ``limit`` seconds: the exit status."""
    cmd = [sys.executable, "-m", "quanta", "parity", "train", "--out", str(run_dir),
           *plan["args"].split(), "--step", variant["step"], "--precision", variant["precision"],
           "--save-every", "60", "--time-limit", f"{max(limit, 0.0):.0f}", "--device", device]
    if variant["compile_forward"]:
        cmd.append("--compile")
    if variant.get("options"):
        cmd += ["--step-options", *variant["options"]]
    if (run_dir / "config.json").exists():
        cmd.append("--resume")
    call.say("$ " + " ".join(cmd[1:]))
    with open(call.log, "a") as fh:
        try:
            # the run pauses itself at --time-limit; this is the safety net
            return subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                  timeout=max(limit, call.left() - 10)).returncode
        except subprocess.TimeoutExpired:
            return 124


def _export(plan: dict, run_dir: Path, results: Path) -> Path:
    """Export a finished run into ``results/gpu_<export>`` (per α for several-α runs)."""
    from empirical.parity import export_run, load_run
    from empirical.parity.config import RunConfig
    from empirical.parity.sweeps import split_alphas

    dest = results / export_name(plan)
    if dest.exists():
        shutil.rmtree(dest)
    config = RunConfig.from_json((run_dir / "config.json").read_text())
    runs = [run_dir] if config.task.alphas is None else \
        split_alphas(run_dir, run_dir.parent / f"{run_dir.name}_by_alpha")
    opts = plan["export"].split()
    max_evals = int(opts[opts.index("--max-evals") + 1]) if "--max-evals" in opts else None
    for r in runs:
        keep = [load_run(r).checkpoint_steps()[-1]] if plan.get("final") else ()
        export_run(r, dest if len(runs) == 1 else dest / r.name, checkpoint_steps=keep,
                   max_evals=max_evals, accuracy="--no-accuracy" not in opts)
    return dest


def _unpack_resume(plan: dict, carry: Path, runs: Path) -> bool:
    parts = _carried_resume(plan, carry)
    if not parts or (runs / plan["name"] / "config.json").exists():
        return False
    _unpack(parts, runs)
    return True


def _unpack(parts: list[Path], dest: Path) -> None:
    """Extract the tar that the pieces ``parts`` (in order) make together into ``dest``
    (the inverse of Call.pack)."""
    with tarfile.open(fileobj=io.BytesIO(b"".join(p.read_bytes() for p in parts))) as tar:
        tar.extractall(dest, filter="data")


def run_plan(plan: dict, speed: dict, call: Call, args) -> str:
    """Train one plan within the call's time; 'done', 'paused' or 'failed'. A plan whose
    chosen step fails before its first resume state is tried again, once, with the next
    measured variant (:func:`fallback_variant`)."""
    if _unpack_resume(plan, args.carry, args.runs):
        call.say(f"{plan['name']}: unpacked the carried resume state")
    chosen = choose_variant(speed, plan_size(plan))
    if (args.runs / plan["name"] / "config.json").exists():
        chosen = _resume_or_restart(plan, speed, chosen, args.runs / plan["name"], call)
    status = _run_plan(plan, chosen, call, args)
    fallback = fallback_variant(plan, speed, chosen, args.tiny)
    if status == "failed":      # not chosen again in this call
        speed.setdefault("failed", set()).add(chosen["name"])
    if status == "failed" and fallback and call.left() > call.reserve + 60:
        shutil.rmtree(args.runs / plan["name"], ignore_errors=True)
        call.say(f"{plan['name']}: trying again with {fallback['name']}")
        status = _run_plan(plan, fallback, call, args)
    return status


def fallback_variant(plan: dict, speed: dict, failed: dict, tiny: bool = False) -> dict | None:
    """The variant to try a plan again with after ``failed`` broke before its first resume
    state: the next measured one (the CPU queue: plain eager float32 steps), or None when
    there is none or, for a plan that must beat ``beat_s``, when it would not."""
    size = plan_size(plan)
    v = choose_variant(TINY_SPEED, size) if tiny else choose_variant(
        dict(speed, failed=set(speed.get("failed", ())) | {failed["name"]}), size)
    if v["name"] == failed["name"] or not beats(plan, v["seconds"]):
        return None
    return v


def beats(plan: dict, seconds: float) -> bool:
    """Whether a plan predicted to take ``seconds`` is worth starting: under its
    ``beat_s``, if it has one."""
    return seconds < plan.get("beat_s", math.inf)


def _run_plan(plan: dict, variant: dict, call: Call, args) -> str:
    size = plan_size(plan)
    run_dir = args.runs / plan["name"]
    limit = min(call.left() - call.reserve, args.max_train)
    call.say(f"{plan['name']}: {size['networks']} networks, H = {size['hidden_units']}, "
             f"{size['steps']} steps; predicted {variant['seconds']:.0f} s with "
             f"{variant['name']}; training for at most {limit:.0f} s")
    t0, resumed = time.monotonic(), (run_dir / "config.json").exists()
    status = _train(plan, variant, run_dir, limit, call, args.device)
    t_train = time.monotonic() - t0
    from empirical.parity import is_complete
    if status == 0 and is_complete(run_dir):
        dest = _export(plan, run_dir, args.results)
        packed = call.pack(args.results, [dest.name], f"{dest.name}.tar")
        call.say(f"{plan['name']}: done in {time.monotonic() - t0:.0f} s; exported to {dest}; "
                 + ("packed as " + ", ".join(p.name for p in packed) if packed
                    else "TOO LARGE to ship within the file limits"))
        if plan.get("timed"):
            call.say("timing " + json.dumps(dict(
                timing(plan, variant, run_dir, t_train, time.monotonic() - t0),
                resumed=resumed)))
        return "done"
    return _paused(plan, size, run_dir, status, t0, call, args)


def _paused(plan: dict, size: dict, run_dir: Path, status: int, t0: float, call: Call,
            args) -> str:
    """Ship a paused run's resume state if it fits; 'paused', or 'failed' without one."""
    resume = run_dir / "checkpoints" / "resume.pt"
    if not resume.exists():
        tail = call.log.read_text().splitlines()[-25:]
        call.say(f"{plan['name']}: failed (exit status {status}) before a resume state; the "
                 "log ends:\n    " + "\n    ".join(tail))
        return "failed"
    # resume.pt holds the metrics so far: metrics.npz need not travel
    names = [f"{plan['name']}/config.json", f"{plan['name']}/checkpoints/resume.pt"]
    packed = call.pack(args.runs, names, f"{plan['name']}.resume.tar")
    real = sum((args.runs / n).stat().st_size for n in names)
    call.say(f"{plan['name']}: paused (exit status {status}) after "
             f"{time.monotonic() - t0:.0f} s; "
             + ("resume state packed as " + ", ".join(p.name for p in packed) if packed
                else f"its resume state ({real / MiB:.1f} MiB) does not fit what comes back "
                     f"({call.summary()}): the next call starts it again")
             + f" [resume state {real / MiB:.1f} MiB, estimated "
               f"{size['resume_bytes'] / MiB:.1f} MiB]")
    return "paused"


def timing(plan: dict, variant: dict, run_dir: Path, train_s: float, total_s: float) -> dict:
    """A timed plan's wall times: the whole (training command, export, packing), the
    training command, the run's own clock at its end and at step 1 (compilation, capture),
    its steps and evaluations."""
    from empirical.parity import load_run
    m = load_run(run_dir).metrics
    steps, wall = [int(s) for s in m["steps"]], [float(w) for w in m["wall_time"]]
    first = wall[steps.index(1)] - wall[0] if 1 in steps else None
    return dict(plan=plan["name"], export=export_name(plan), variant=variant["name"],
                end_to_end_s=round(total_s, 1), train_command_s=round(train_s, 1),
                run_clock_s=round(wall[-1], 1),
                first_step_s=None if first is None else round(first, 1),
                steps=steps[-1], evaluations=len(steps),
                predicted_s=round(variant["seconds"], 1), date=time.strftime("%Y-%m-%d"))


def _startable(plan: dict, speed: dict, call: Call, args) -> bool:
    """Whether to start (or resume) ``plan`` now: a plan marked one_call, or whose resume
    state would not fit what is left of $OUT, only when predicted to finish in the call."""
    size = plan_size(plan)
    predicted = choose_variant(speed, size)["seconds"]
    need = predicted * 1.2 + call.reserve
    if not beats(plan, predicted):
        call.say(f"{plan['name']}: predicted {predicted:.0f} s, not under the "
                 f"{plan['beat_s']:.0f} s it must beat: skipped")
        return False
    if _carried_resume(plan, args.carry) and not plan.get("one_call"):
        return True
    why = "it runs in one call" if plan.get("one_call") else \
        None if call.room(size["resume_bytes"]) else \
        f"its resume state, ~{size['resume_bytes'] / MiB:.0f} MiB, would not come back"
    if why and need > call.left():
        call.say(f"{plan['name']}: needs ~{need:.0f} s in one call ({why}), "
                 f"{call.left():.0f} s left: skipped")
        return False
    return True


def next_plans(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    call = Call(args.seconds, out, out / "next.log", args.reserve, args.out_limit)
    speed = load_speed(out, args.tiny)
    call.say(f"next: {args.seconds:.0f} s; " + speed_line(speed))
    args.runs.mkdir(parents=True, exist_ok=True)
    for plan in plans(args.tiny):
        if done(plan, args.results, args.carry, out):
            continue
        if call.left() < call.reserve + args.min_train or call.files() >= MAX_FILES:
            break
        if not _startable(plan, speed, call, args):
            continue
        status = run_plan(plan, speed, call, args)
        if status == "failed" and plan.get("beat_s"):
            continue            # an attempt at a faster step: the queue goes on without it
        if status != "done":
            break
    left = [p["name"] for p in plans(args.tiny) if not done(p, args.results, args.carry, out)]
    call.say(f"plans left: {', '.join(left) if left else 'none'}; {call.summary()}")
    return 0 if not left else 75


def unmeasured(args) -> int:
    """Whether a GPU window should start with a menu: exit status 0, printing the menu's
    variants (``MENU_VARIANTS``) on the last line, when variants of
    ``parity_menu.MEASURE_NEXT`` have no result (ok or failed) in the committed menu (the
    CPU queue has none); else :data:`ALL_MEASURED`."""
    from parity_menu import MEASURE_NEXT, WINDOW_AFTER, WINDOW_BEFORE, Variant
    menus = load_speed(None, args.tiny).get("menus", [])
    seen = {Variant.of(v).name for m in menus for v in m["variants"]
            if v.get("status") in ("ok", "error")}
    missing = [n for n in MEASURE_NEXT if Variant.parse(n).name not in seen]
    if not missing:
        print("every variant of parity_menu.MEASURE_NEXT has a committed measurement",
              file=sys.stderr)
        return ALL_MEASURED
    print(f"unmeasured step variants: {', '.join(missing)}", file=sys.stderr)
    print(",".join(WINDOW_BEFORE + missing + WINDOW_AFTER))
    return 0


def replace_marked(text: str, tag: str, content: str) -> str:
    """``text`` with what stands between ``<!-- TAG -->`` and ``<!-- /TAG -->`` replaced by
    ``content`` (unchanged where the markers are missing)."""
    pattern = re.compile(rf"(<!-- {re.escape(tag)} -->).*?(<!-- /{re.escape(tag)} -->)", re.S)
    return pattern.sub(lambda m: m.group(1) + content + m.group(2), text)


def timing_paragraph(t: dict) -> str:
    """A timed plan's figures (:func:`timing`) as BENCHMARKS.md's paragraph."""
    first = "" if t["first_step_s"] is None else \
        f", of which step 1 (compilation, capture) {t['first_step_s']:.0f} s"
    return (f"**{t['end_to_end_s']:.0f} s end to end** ({t['date']}, plan `{t['plan']}`, "
            f"variant {t['variant']}, `bash benchmarks/gpu_session.sh next`): the training "
            f"command {t['train_command_s']:.0f} s ({t['steps']} steps, {t['evaluations']} "
            f"evaluations; the run's clock {t['run_clock_s']:.0f} s{first}), export and "
            f"packing the rest; predicted {t['predicted_s']:.0f} s; export "
            f"`results/parity/{t['export']}`."
            + (" Resumed from a paused call: not an end-to-end figure." if t.get("resumed")
               else ""))


def menu_table(menu: dict) -> str:
    """A menu (menu.json) as BENCHMARKS.md's table: every variant's figures and check,
    then the evaluation's timing."""
    rows = ["", "", f"{menu['device']}, torch {menu['torch']}, {menu['n_networks']} networks, "
            f"H = {menu['hidden_units']}, floor {menu['floor_bf16']['floor_s'] * 1e3:.3f} ms:",
            "", "| variant | ms/step | network-steps/s | × paper | floor fraction | Δg/g "
            "| Δθ/moved | check + warm-up s |", "|---|---|---|---|---|---|---|---|"]
    for v in menu["variants"]:
        if v["status"] != "ok":
            rows.append(f"| {v['name']} | {v['status']}: {v.get('error', '')[:60]} "
                        "| | | | | | |")
            continue
        c = v["check"]
        rows.append(f"| {v['name']} | {v['ms_per_step']:.3f} | {v['network_steps_per_s']:,.0f} "
                    f"| {v['ratio_to_paper']:,.0f} | {v['floor_fraction']:.2f} "
                    f"| {c['grad_rel']:.1e} | {c['rel']:.2f}{'' if c['ok'] else ' OFF'} "
                    f"| {v['check_and_warmup_s']:.1f} |".replace(",", " "))
    e = menu.get("evaluation")
    if e:
        rows += ["", f"One evaluation ({e['samples']} test samples × {e['hidden_units']} units, "
                 f"{e['precision']}): {e['product_s'] * 1e3:.1f} ms with the module's forward, "
                 f"{e['lookup_s'] * 1e3:.1f} ms with the control rows looked up."]
    return "\n".join(rows) + "\n"


def ingest(args) -> int:
    """Unpack a call's returned $OUT: exports into results/, resume state into the carry
    folder, the menu into benchmarks/gpu_speed.json, timed plans' figures into
    BENCHMARKS.md."""
    src = Path(args.dir)
    if not src.is_dir():
        print(f"ingest: {src} is not a folder (give the call's returned $OUT)", file=sys.stderr)
        return 2
    args.carry.mkdir(parents=True, exist_ok=True)
    for first in sorted(src.glob("gpu_*.tar")) + sorted(src.glob("gpu_*.tar.part-aa")):
        stem = first.name.split(".tar")[0]
        args.results.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(args.results / stem, ignore_errors=True)
        _unpack(sorted(src.glob(f"{stem}.tar*")), args.results)
        print(f"unpacked {stem} into {args.results / stem} (commit it)")
    for old in args.carry.glob("*.resume.tar*"):
        old.unlink()
    for part in sorted(src.glob("*.resume.tar*")):
        shutil.copy(part, args.carry / part.name)
        print(f"carried {part.name} into {args.carry} (send it with carry: [\"{args.carry}\"])")
    if (src / "menu.json").exists() and not args.tiny:
        merged = merge_menus(json.loads((src / "menu.json").read_text()),
                             _read_menu(SPEED_FILE))
        SPEED_FILE.write_text(json.dumps(merged, indent=1) + "\n")
        print(f"menu -> {SPEED_FILE} (commit it: the next estimates use it)")
    if not (args.tiny and args.benchmarks == BENCHMARKS_FILE):   # no CPU figures in it
        _ingest_figures(src, args.benchmarks)
    return 0


def _ingest_figures(src: Path, benchmarks: Path) -> None:
    """The menu's table and the timed plans' paragraphs into ``benchmarks`` (between their
    markers: ``gpu:menu``, ``gpu:PLAN``)."""
    if not benchmarks.exists():
        return
    text = benchmarks.read_text()
    if (src / "menu.json").exists():
        text = replace_marked(text, "gpu:menu", menu_table(json.loads(
            (src / "menu.json").read_text())))
    log = src / "next.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        if line.startswith("timing {"):
            t = json.loads(line[len("timing "):])
            text = replace_marked(text, f"gpu:{t['plan']}", timing_paragraph(t))
            print(f"{t['plan']}: {t['end_to_end_s']:.0f} s end to end")
    if text != benchmarks.read_text():
        benchmarks.write_text(text)
        print(f"figures -> {benchmarks} (commit it)")


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["estimate", "next", "ingest", "unmeasured"])
    p.add_argument("dir", nargs="?", help="ingest: the folder holding a call's $OUT files")
    p.add_argument("--seconds", type=float, default=540.0)
    p.add_argument("--out", default=os.environ.get("OUT"))
    p.add_argument("--tiny", action="store_true", help="the CPU-sized test queue")
    p.add_argument("--device", default="auto")
    p.add_argument("--reserve", type=float, default=RESERVE_S,
                   help="seconds kept for start-up, export and packing")
    p.add_argument("--min-train", type=float, default=MIN_TRAIN_S,
                   help="start no plan with less training time than this")
    p.add_argument("--max-train", type=float, default=float("inf"),
                   help="train each plan at most this long in this call (it pauses; 0: "
                        "after its first step)")
    p.add_argument("--out-limit-mib", type=float, default=MAX_OUT_BYTES / MiB,
                   help="bytes that come back from $OUT in all (the device tool's 64 MiB)")
    p.add_argument("--results", type=Path, default=None)
    p.add_argument("--runs", type=Path, default=ROOT / "runs")
    p.add_argument("--carry", type=Path, default=ROOT / ".gpu")
    p.add_argument("--benchmarks", type=Path, default=BENCHMARKS_FILE,
                   help="ingest: the file whose <!-- gpu:PLAN --> paragraphs timed plans fill")
    args = p.parse_args(argv)
    args.out_limit = int(args.out_limit_mib * MiB)
    if args.results is None:
        args.results = args.runs / "results" if args.tiny else ROOT / "results" / "parity"
    sys.path.insert(0, str(ROOT))
    if args.action == "next" and not args.out:
        p.error("next needs --out or $OUT")
    if args.action == "ingest" and not args.dir:
        p.error("ingest needs the folder of a call's $OUT files")
    return {"estimate": estimate, "next": next_plans, "ingest": ingest,
            "unmeasured": unmeasured}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
