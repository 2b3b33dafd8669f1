"""The queue of the paper's sweeps for GPU calls: which plan comes next, how long each
takes, and one call's worth of them (``next``), each finished run exported and packed for
the trip back through $OUT.

    python benchmarks/gpu_queue.py estimate            # plan --estimate
    python benchmarks/gpu_queue.py next --seconds 540  # what gpu_session.sh next runs
    python benchmarks/gpu_queue.py ingest DIR          # unpack a call's $OUT into the checkout

State between calls on fresh machines lives only in the checkout: a plan is done when
``results/parity/gpu_<plan>/`` holds its export (committed after ``ingest``), or when its
packed export ``gpu_<plan>.tar*`` lies in the carry folder (``.gpu/``, git-ignored, sent with
``carry: [".gpu"]``). A plan that a call had to pause ships its resume state as
``<plan>.resume.tar`` (in 15 MiB pieces ``.part-aa``, … when larger); in the carry folder (``ingest`` puts it there) the next call
resumes it. Speeds for the estimates and the choice of step come from this call's menu
(``$OUT/menu.json``), else ``benchmarks/gpu_speed.json`` (``ingest`` copies a menu there),
else the speed measured on 2026-12-04 with today's eager bf16 step.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEED_FILE = ROOT / "benchmarks" / "gpu_speed.json"
#: the device tool's limits on what comes back from $OUT
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2 ** 20
PIECE = 15 * 2 ** 20
#: a plan whose resume state is larger cannot come back (working tree limit 64 MiB)
MAX_RESUME_BYTES = 48 * 2 ** 20
#: seconds kept free for start-up, export and packing after a plan's training, and the
#: least training time worth starting a plan for (``--reserve``, ``--min-train``)
RESERVE_S, MIN_TRAIN_S = 40.0, 30.0
#: speed before any menu, in hidden-unit-samples per second (hidden units × batch / seconds
#: per step): the Figure-2 run of 2026-12-04 (eager step, bf16, compiled forward), 2.4 ms
#: per step for 3 805 units at batch 20 000
DEFAULT_SPEED = dict(step="eager", precision="bf16", compile_forward=True,
                     rate=3805 * 20_000 / 2.4e-3, warmup_s=10.0,
                     source="fig2_NS run of 2026-12-04 (2.2-2.6 ms/step)")

#: the CPU queue's default: plain eager float32 steps
TINY_SPEED = dict(step="eager", precision="fp32", compile_forward=False, rate=1e6,
                  warmup_s=1.0, source="CPU default")

FIG2 = "--n-tasks 500 --n-bits 100 --k 3 --batch 20000"
#: steps of the D sweeps: the paper's minimum test loss came before step 9 500 even at the
#: largest D (5·10^6, 38 epochs); 25 000 steps are 2.6 times that (see BENCHMARKS.md)
D_STEPS = 25_000
ALPHAS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]


def _plans() -> list[dict]:
    alpha_ns = "--steps 100000 --eval-points 100 --width-grid 9 300 12 --seeds 0 1 2 --checkpoints 5"
    alpha_d = f"--steps {D_STEPS} --eval-points 60 --widths 500 --D-grid 10000 5000000 12 --checkpoints 3"
    return [
        dict(name="fig2_NS", args=f"{FIG2} --steps 200000 --eval-points 100 --alpha 0.4 "
             "--width-grid 9 500 30 --checkpoints 20", export="--no-accuracy", final=True),
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
    dict(name="tiny_NS", args=f"{TINY} --alphas 0.2 0.6 --widths 4 8 --seeds 0 1 --steps 1500 "
         "--eval-points 12 --checkpoints 3", export="--no-accuracy --max-evals 6", final=True),
    dict(name="tiny_D", args=f"{TINY} --alpha 0.4 --widths 8 --D 50 400 --steps 400 "
         "--eval-points 10 --checkpoints 2", export="--no-accuracy"),
]


def plans(tiny: bool = False) -> list[dict]:
    return TINY_PLANS if tiny else _plans()


def plan_config(plan: dict):
    """The RunConfig of a plan's ``quanta parity train`` arguments."""
    from quanta.commands.parity import add_parser, config_from_args
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="c"))
    argv = ["parity", "train", "--out", "x", *plan["args"].split()]
    return config_from_args(parser.parse_args(argv))


def plan_size(plan: dict) -> dict:
    """Networks, hidden units, parameters, steps, hidden-unit-samples (units × batch ×
    steps: the work) and the bytes of its resume state."""
    c = plan_config(plan)
    groups = len(c.task.alpha_list) * len(c.train.D or [0]) * len(c.train.seeds)
    H = groups * sum(c.model.widths)
    params = H * (c.task.n_tasks + c.task.n_bits + 3) + 2 * groups * len(c.model.widths)
    return dict(networks=groups * len(c.model.widths), hidden_units=H, params=params,
                steps=c.train.steps, unit_samples=H * c.train.steps * c.train.batch,
                resume_bytes=12 * params)


def load_speed(out: Path | None, tiny: bool = False) -> dict:
    """The latest measured speed: this call's menu, the committed one (not for the CPU
    queue), or the default."""
    for path in ([out / "menu.json"] if out else []) + ([] if tiny else [SPEED_FILE]):
        if path.exists():
            menu = json.loads(path.read_text())
            if "best" in menu:
                b = menu["best"]
                return dict(b, menu=menu, source=str(path),
                            rate=b["unit_steps_per_s"] * b["batch"])
    return dict(TINY_SPEED if tiny else DEFAULT_SPEED)


def variant_ok(v: dict) -> bool:
    """A menu variant that ran and passes the check under today's tolerances (a menu
    written by older code may hold other ok flags; one without the gradient check is judged
    on its parameters alone)."""
    from parity_menu import TOLERANCE
    if v.get("status") != "ok":
        return False
    tol, c = TOLERANCE[v["precision"]], v["check"]
    return c.get("grad_rel", 0.0) <= tol["grad"] and c["rel"] <= tol["params"]


def measured_variants(speed: dict) -> list[dict]:
    """The checked variants of the speed's menu with their rates (hidden-unit-samples/s)
    and warm-up seconds; the speed itself when it has no menu."""
    menu = speed.get("menu")
    if menu is None:
        return [speed]
    samples = menu["hidden_units"] * menu["config"]["train"]["batch"]
    return [dict(v, rate=samples / v["s_per_step"], warmup_s=v["check_and_warmup_s"])
            for v in menu["variants"] if variant_ok(v)] or [speed]


def predicted_seconds(v: dict, unit_samples: float) -> float:
    return v.get("warmup_s", DEFAULT_SPEED["warmup_s"]) + unit_samples / v["rate"]


def speed_line(speed: dict) -> str:
    v = max(measured_variants(speed), key=lambda v: v["rate"])
    name = v.get("name", f"{v['step']}/{v['precision']}")
    return (f"fastest checked variant {name}: {v['rate']:.3g} hidden-unit-samples/s "
            f"(from {speed['source']})")


def choose_variant(speed: dict, size: dict) -> dict:
    """The measured variant that finishes ``size`` soonest (compilation included):
    step, precision, compile_forward, and the predicted seconds."""
    v = min(measured_variants(speed), key=lambda v: predicted_seconds(v, size["unit_samples"]))
    return dict(step=v["step"], precision=v["precision"], compile_forward=v["compile_forward"],
                seconds=predicted_seconds(v, size["unit_samples"]))


def _resume_or_restart(plan: dict, speed: dict, chosen: dict, run_dir: Path, call) -> dict:
    """The variant to train a plan with when ``run_dir`` holds a paused run: the step it was
    started with, unless starting afresh with ``chosen`` is predicted to finish sooner
    (then the paused run is deleted)."""
    import torch
    t = json.loads((run_dir / "config.json").read_text())["train"]
    saved = dict(step=t.get("step", "eager"), precision=t["precision"],
                 compile_forward=t["compile"])
    resume = run_dir / "checkpoints" / "resume.pt"
    if not resume.exists():
        return dict(chosen, **saved)
    left = 1 - torch.load(resume, map_location="cpu", weights_only=True)["step"] / t["steps"]
    same = [v for v in measured_variants(speed)
            if all(v[k] == saved[k] for k in saved)] or [DEFAULT_SPEED]
    t_resume = predicted_seconds(same[0], plan_size(plan)["unit_samples"] * left)
    if chosen["seconds"] < t_resume and any(chosen[k] != saved[k] for k in saved):
        call.say(f"{plan['name']}: starting afresh with {chosen['step']}/{chosen['precision']} "
                 f"(~{chosen['seconds']:.0f} s) rather than resuming "
                 f"{saved['step']}/{saved['precision']} (~{t_resume:.0f} s)")
        shutil.rmtree(run_dir)
        return chosen
    return dict(chosen, **saved, seconds=t_resume)


def done(plan: dict, results: Path, carry: Path, out: Path | None = None) -> bool:
    exported = results / f"gpu_{plan['name']}"
    if (exported / "config.json").exists() or any(exported.glob("*/config.json")):
        return True
    return any(d is not None and any(Path(d).glob(f"gpu_{plan['name']}.tar*"))
               for d in (carry, out))


def estimate(args) -> int:
    speed = load_speed(Path(args.out) if args.out else None, args.tiny)
    print(speed_line(speed))
    total = 0.0
    for plan in plans(args.tiny):
        size, v = plan_size(plan), None
        v = choose_variant(speed, size)
        state = "done" if done(plan, args.results, args.carry) else \
            "paused (resume state carried)" if _carried_resume(plan, args.carry) else "to do"
        total += 0 if state == "done" else v["seconds"]
        print(f"{plan['name']:<18} {size['networks']:>4} networks  H = {size['hidden_units']:>6}  "
              f"{size['steps']:>7} steps  {v['seconds']:7.0f} s with {v['step']}/{v['precision']}"
              f"  resume state {size['resume_bytes'] / 2 ** 20:5.1f} MiB"
              f"{'' if size['resume_bytes'] <= MAX_RESUME_BYTES else ' (cannot ship: one call)'}"
              f"  [{state}]")
    print(f"left to do: about {total:.0f} s of device time")
    return 0


def _carried_resume(plan: dict, carry: Path) -> list[Path]:
    return sorted(carry.glob(f"{plan['name']}.resume.tar*"))


class Call:
    """One ``next`` call: its deadline, the files it has put into $OUT, and its log."""

    def __init__(self, seconds: float, out: Path, log: Path, reserve: float = RESERVE_S):
        self.deadline = time.monotonic() + seconds
        self.out, self.log, self.reserve = out, log, reserve

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def files(self) -> int:
        return sum(1 for p in self.out.rglob("*") if p.is_file())

    def say(self, text: str) -> None:
        print(text, flush=True)
        with open(self.log, "a") as fh:
            fh.write(text + "\n")

    def pack(self, src_dir: Path, names: list[str], stem: str) -> list[Path] | None:
        """Tar ``names`` (relative to ``src_dir``) into ``$OUT/stem`` (pieces of 15 MiB
        when larger than 16 MiB); None when the pieces would break the file limits."""
        tmp = Path(tempfile.gettempdir()) / f"quanta-{os.getpid()}-{stem}"
        with tarfile.open(tmp, "w") as tar:
            for n in names:
                tar.add(src_dir / n, arcname=n)
        size = tmp.stat().st_size
        pieces = 1 if size <= MAX_FILE_BYTES else -(-size // PIECE)
        if self.files() + pieces > MAX_FILES:           # the log is already counted
            tmp.unlink()
            return None
        if pieces == 1:
            return [Path(shutil.move(tmp, self.out / stem))]
        written = []
        with open(tmp, "rb") as fh:
            for i in range(pieces):
                p = self.out / f"{stem}.part-{chr(97 + i // 26)}{chr(97 + i % 26)}"
                p.write_bytes(fh.read(PIECE))
                written.append(p)
        tmp.unlink()
        return written


def _train(plan: dict, variant: dict, run_dir: Path, limit: float, call: Call,
           device: str) -> int:
    """Train (or resume) a plan's run for at most ``limit`` seconds: the exit status."""
    cmd = [sys.executable, "-m", "quanta", "parity", "train", "--out", str(run_dir),
           *plan["args"].split(), "--step", variant["step"], "--precision", variant["precision"],
           "--save-every", "60", "--time-limit", f"{max(limit, 1.0):.0f}", "--device", device]
    if variant["compile_forward"]:
        cmd.append("--compile")
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
    """Export a finished run into ``results/gpu_<plan>`` (per α for several-α runs)."""
    from empirical.parity import export_run, load_run
    from empirical.parity.config import RunConfig
    from empirical.parity.sweeps import split_alphas

    dest = results / f"gpu_{plan['name']}"
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
    data = b"".join(p.read_bytes() for p in parts)
    tmp = runs / f".{plan['name']}.resume.tar"
    tmp.write_bytes(data)
    with tarfile.open(tmp) as tar:
        tar.extractall(runs, filter="data")
    tmp.unlink()
    return True


def run_plan(plan: dict, speed: dict, call: Call, args) -> str:
    """Train one plan within the call's time; 'done', 'paused' or 'failed'. A plan whose
    chosen step fails before its first resume state is tried again, once, with today's
    proven step (eager, bf16, compiled forward)."""
    if _unpack_resume(plan, args.carry, args.runs):
        call.say(f"{plan['name']}: unpacked the carried resume state")
    chosen = choose_variant(speed, plan_size(plan))
    if (args.runs / plan["name"] / "config.json").exists():
        chosen = _resume_or_restart(plan, speed, chosen, args.runs / plan["name"], call)
    status = _run_plan(plan, chosen, call, args)
    fallback = choose_variant(TINY_SPEED if args.tiny else DEFAULT_SPEED, plan_size(plan))
    same = all(fallback[k] == chosen[k] for k in ("step", "precision", "compile_forward"))
    if status == "failed" and not same and call.left() > call.reserve + 60:
        shutil.rmtree(args.runs / plan["name"], ignore_errors=True)
        call.say(f"{plan['name']}: trying again with {fallback['step']}/{fallback['precision']}")
        status = _run_plan(plan, fallback, call, args)
    return status


def _run_plan(plan: dict, variant: dict, call: Call, args) -> str:
    size = plan_size(plan)
    run_dir = args.runs / plan["name"]
    limit = min(call.left() - call.reserve, args.max_train)
    call.say(f"{plan['name']}: {size['networks']} networks, H = {size['hidden_units']}, "
             f"{size['steps']} steps; predicted {variant['seconds']:.0f} s with "
             f"{variant['step']}/{variant['precision']}; training for at most {limit:.0f} s")
    t0 = time.monotonic()
    status = _train(plan, variant, run_dir, limit, call, args.device)
    from empirical.parity import is_complete
    if status == 0 and is_complete(run_dir):
        dest = _export(plan, run_dir, args.results)
        packed = call.pack(args.results, [dest.name], f"gpu_{plan['name']}.tar")
        call.say(f"{plan['name']}: done in {time.monotonic() - t0:.0f} s; exported to {dest}; "
                 + ("packed as " + ", ".join(p.name for p in packed) if packed
                    else "TOO LARGE to ship within the file limits"))
        return "done"
    resume = run_dir / "checkpoints" / "resume.pt"
    if not resume.exists():
        tail = call.log.read_text().splitlines()[-25:]
        call.say(f"{plan['name']}: failed (exit status {status}) before a resume state; the "
                 "log ends:\n    " + "\n    ".join(tail))
        return "failed"
    names = [f"{plan['name']}/{n}" for n in ("config.json", "metrics.npz",
                                              "checkpoints/resume.pt")]
    packed = None
    if size["resume_bytes"] <= MAX_RESUME_BYTES:
        packed = call.pack(args.runs, [n for n in names if (args.runs / n).exists()],
                           f"{plan['name']}.resume.tar")
    call.say(f"{plan['name']}: paused (exit status {status}) after "
             f"{time.monotonic() - t0:.0f} s; "
             + ("resume state packed as " + ", ".join(p.name for p in packed) if packed
                else "its resume state cannot be shipped: the next call starts it again"))
    return "paused"


def next_plans(args) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    call = Call(args.seconds, out, out / "next.log", args.reserve)
    speed = load_speed(out, args.tiny)
    call.say(f"next: {args.seconds:.0f} s; " + speed_line(speed))
    args.runs.mkdir(parents=True, exist_ok=True)
    ran = 0
    for plan in plans(args.tiny):
        if done(plan, args.results, args.carry, out):
            continue
        size, resumable = plan_size(plan), bool(_carried_resume(plan, args.carry))
        need = choose_variant(speed, size)["seconds"] * 1.2 + call.reserve
        if need > call.left() and not resumable and size["resume_bytes"] > MAX_RESUME_BYTES:
            call.say(f"{plan['name']}: needs ~{need:.0f} s in one call (its resume state "
                     f"cannot be shipped), {call.left():.0f} s left: skipped")
            continue
        if call.left() < call.reserve + args.min_train or call.files() >= MAX_FILES:
            break
        status = run_plan(plan, speed, call, args)
        ran += 1
        if status != "done":
            break
    left = [p["name"] for p in plans(args.tiny) if not done(p, args.results, args.carry, out)]
    call.say(f"plans left: {', '.join(left) if left else 'none'}; files in $OUT: {call.files()}")
    return 0 if not left else 75


def ingest(args) -> int:
    """Unpack a call's returned $OUT: exports into results/, resume state into the carry
    folder, the menu into benchmarks/gpu_speed.json."""
    src = Path(args.dir)
    args.carry.mkdir(parents=True, exist_ok=True)
    for first in sorted(src.glob("gpu_*.tar")) + sorted(src.glob("gpu_*.tar.part-aa")):
        stem = first.name.split(".tar")[0]
        data = b"".join(p.read_bytes() for p in sorted(src.glob(f"{stem}.tar*")))
        tmp = args.carry / f".{stem}.tar"
        tmp.write_bytes(data)
        args.results.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(args.results / stem, ignore_errors=True)
        with tarfile.open(tmp) as tar:
            tar.extractall(args.results, filter="data")
        tmp.unlink()
        print(f"unpacked {stem} into {args.results / stem} (commit it)")
    for old in args.carry.glob("*.resume.tar*"):
        old.unlink()
    for part in sorted(src.glob("*.resume.tar*")):
        shutil.copy(part, args.carry / part.name)
        print(f"carried {part.name} into {args.carry} (send it with carry: [\"{args.carry}\"])")
    if (src / "menu.json").exists() and not args.tiny:
        shutil.copy(src / "menu.json", SPEED_FILE)
        print(f"menu -> {SPEED_FILE} (commit it: the next estimates use it)")
    return 0


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["estimate", "next", "ingest"])
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
                   help="train each plan at most this long in this call (it pauses)")
    p.add_argument("--results", type=Path, default=None)
    p.add_argument("--runs", type=Path, default=ROOT / "runs")
    p.add_argument("--carry", type=Path, default=ROOT / ".gpu")
    args = p.parse_args(argv)
    if args.results is None:
        args.results = args.runs / "results" if args.tiny else ROOT / "results" / "parity"
    sys.path.insert(0, str(ROOT))
    if args.action == "next" and not args.out:
        p.error("next needs --out or $OUT")
    if args.action == "ingest" and not args.dir:
        p.error("ingest needs the folder of a call's $OUT files")
    return {"estimate": estimate, "next": next_plans, "ingest": ingest}[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
