"""The step menu: every way of running the fused parity step, timed and checked on one
configuration (the Figure-2 sweep by default) within a time budget.

For each variant (``TrainConfig.step`` × precision): ``--check-steps`` steps from the common
initialisation, checked against the fp32 eager step on the same batches (the first step's
gradient, ‖Δg‖/‖g‖, and the parameters after the check steps, ‖Δθ‖ / ‖θ_fp32 − θ_0‖: see
TOLERANCE); then as many synchronised, timed steps as the variant's share of the budget
allows. A variant is ``step[+compile_fwd][+option…]/precision`` (:class:`Variant`; step
options: ``empirical.parity.config.STEP_OPTIONS``). After the first variant, one evaluation
is timed with the module's forward and with the control rows looked up (the queue's
estimates use it); after all, the fastest checked variant is profiled (without its CUDA
graph, so that the profiler sees its kernels). Printed, and written to ``--json`` after
every step, so a menu stopped from outside keeps what it measured. A variant whose import
or setup fails (no CUDA, no compiler) is reported and skipped.

    python benchmarks/parity_menu.py --seconds 200 --json menu.json          # GPU, Figure 2
    python benchmarks/parity_menu.py --config cpu --threads 1 --seconds 600  # CPU figures
    python benchmarks/parity_menu.py --tiny --seconds 120 --json menu.json   # CPU check

The floor: per step the math needs F = 4·B·n_bits·H + 13·B·H floating-point operations
(bits products forward and for the weight gradient; the one-hot control part is a row
lookup and its gradient a per-subtask sum; per-unit output products and their gradients)
and, when the B × H activations and their gradient are each written once and read where
used (pre-activation written, read by the output product and the output-weight gradient and
the mask; its gradient written and read by the weight gradient: 6 passes), 6·B·H bytes per
activation byte, plus Adam's 7 passes over the float32 parameters. Against the H200's
measured rates (KINDS.md: 790 TFLOP/s bf16 products, 4.3 TB/s copies) the floor is
max(F / 790e12, bytes / 4.3e12); ``fused_floor`` leaves the activation traffic out (a kernel
that never writes them).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig  # noqa: E402
from empirical.parity.train import evaluate, new_step  # noqa: E402

#: the paper's own training script, one width-500 network, on one H200
#: (../shared/data/gpu-runs/README.md): seconds per step
PAPER_S_PER_STEP = 0.0598
#: measured ceilings of one H200 (/work/.library/device/KINDS.md, 2026-10/11)
PEAK_FLOPS = {"bf16": 790e12, "tf32": 395e12, "fp32": 67e12}
PEAK_BYTES = 4.3e12
#: the variants a menu runs by default, in order of expected value (a menu short of time
#: skips the last): the reference; the Triton kernels (step option triton: eager glue in a
#: CUDA graph, then compiled glue with Adam); inductor's max-autotune, never reached by
#: the menus of 2026-12-04; the best of those menus (compiled_graphs/bf16, 0.706 ms per
#: Figure-2 step) as this machine's baseline; then the other step options. The variants of
#: earlier menus (manual, graphs, compiled, eager+compile_fwd, tf32) run when named in
#: --variants (MENU_VARIANTS).
VARIANTS = ["eager/fp32", "graphs+triton/bf16", "compiled_graphs+adam+triton/bf16",
            "compiled_graphs+autotune/bf16", "compiled_graphs/bf16",
            "compiled_graphs+triton/bf16", "compiled_graphs+adam/bf16",
            "compiled_graphs+gather_in+gather_out+adam/bf16", "compiled_graphs+gather_in/bf16",
            "compiled_graphs+gather_out/bf16"]
#: the variants a GPU window measures before its queue until a committed menu holds them
#: (``gpu_queue.py unmeasured``; ``bash benchmarks/gpu_session.sh`` with no mode), and
#: what that menu runs besides them: the reference first; then, for a ratio on the same
#: machine, the best step so far, and max-autotune if time is left (not required: its
#: 150 s of compilation would crowd out the rest)
MEASURE_NEXT = ["graphs+triton/bf16", "compiled_graphs+adam+triton/bf16"]
WINDOW_BEFORE, WINDOW_AFTER = ["eager/fp32"], ["compiled_graphs/bf16",
                                               "compiled_graphs+autotune/bf16"]
#: what a variant must stay within, against the fp32 eager step on the same batches:
#: ‖Δg‖/‖g‖ of the first step's gradient (the same parameters and batch: the rounding of
#: the precision, ~1e-6 in fp32, ~1e-2 in bf16; a wrong gradient is off by O(1)), and
#: ‖Δθ‖ / ‖θ_fp32 − θ_0‖ after the check steps (Adam's update is lr·m/√v, about lr·sign(g)
#: early on, so wherever a gradient is near zero any rounding flips an update of size lr:
#: measured 1.2e-3 for fp32 and 0.11 for bf16 after 50 steps on the CPU configuration)
TOLERANCE = {"fp32": dict(grad=1e-4, params=1e-2), "tf32": dict(grad=2e-2, params=0.3),
             "bf16": dict(grad=5e-2, params=0.3)}
#: seconds a variant needs besides its timed steps (compilation, capture), budgeted upfront;
#: the option autotune adds AUTOTUNE_RESERVE, the option triton (its kernels' compilation
#: and autotuning over 10 configurations) TRITON_RESERVE
SETUP_RESERVE = {"eager": 5.0, "manual": 5.0, "graphs": 10.0, "compiled": 60.0,
                 "compiled_graphs": 60.0}
AUTOTUNE_RESERVE, TRITON_RESERVE = 90.0, 30.0


@dataclass(frozen=True)
class Variant:
    """One way of running the step: ``TrainConfig.step``, precision, the eager step's
    compiled forward and step options, named ``step[+compile_fwd][+option…]/precision``."""
    step: str
    precision: str = "bf16"
    compile_forward: bool = False
    options: tuple = ()

    @property
    def name(self) -> str:
        plus = ["compile_fwd"] * self.compile_forward + list(self.options)
        return "+".join([self.step, *plus]) + "/" + self.precision

    @classmethod
    def parse(cls, name: str) -> "Variant":
        """``step[+compile_fwd][+option…][/precision]`` (precision bf16 when left out)."""
        head, _, precision = name.strip().partition("/")
        step, *plus = head.split("+")
        return cls(step, precision or "bf16", "compile_fwd" in plus,
                   tuple(o for o in plus if o != "compile_fwd"))

    @classmethod
    def of(cls, d: dict) -> "Variant":
        """The variant a menu entry (or a queue's speed) describes; entries of menus written
        before step options have none."""
        return cls(d["step"], d["precision"], bool(d.get("compile_forward")),
                   tuple(d.get("options") or ()))

    def fields(self) -> dict:
        return dict(step=self.step, precision=self.precision,
                    compile_forward=self.compile_forward, options=list(self.options))

    def configure(self, config: RunConfig) -> RunConfig:
        """A copy of ``config`` that trains with this variant."""
        cfg = RunConfig.from_dict(config.to_dict())
        t = cfg.train
        t.step, t.precision, t.compile = self.step, self.precision, self.compile_forward
        t.step_options = list(self.options)
        return cfg.validate()

    def setup_reserve(self) -> float:
        return (SETUP_RESERVE[self.step] + SETUP_RESERVE["compiled"] * self.compile_forward
                + AUTOTUNE_RESERVE * ("autotune" in self.options)
                + TRITON_RESERVE * ("triton" in self.options))


def step_cost(n_bits: int, hidden: int, batch: int, in_dim: int, act_bytes: int = 2) -> dict:
    """FLOPs and bytes of one step as the floor counts them (module docstring)."""
    flops = 4 * batch * n_bits * hidden + 13 * batch * hidden
    adam = 7 * 4 * hidden * (in_dim + 3)
    return dict(flops=float(flops), activation_bytes=float(6 * act_bytes * batch * hidden),
                adam_bytes=float(adam))


def floors(cost: dict, precision: str = "bf16") -> dict:
    """Seconds per step at the measured ceilings: with and without the activation traffic."""
    t_flop = cost["flops"] / PEAK_FLOPS[precision]
    return dict(floor_s=max(t_flop, (cost["activation_bytes"] + cost["adam_bytes"]) / PEAK_BYTES),
                fused_floor_s=max(t_flop, cost["adam_bytes"] / PEAK_BYTES))


#: configurations: the Figure-2 sweep (the GPU's), a CPU-sized one of BENCHMARKS.md's first
#: row, and a tiny one for tests: (task, width grid (min, max, count), batch)
CONFIGS = {"fig2": (dict(n_tasks=500, n_bits=100), (9, 500, 30), 20_000),
           "cpu": (dict(n_tasks=100, n_bits=30), (9, 128, 10), 2_000),
           "tiny": (dict(n_tasks=20, n_bits=16), (4, 32, 4), 256)}


def menu_config(name: str, device: str) -> RunConfig:
    task, (lo, hi, count), batch = CONFIGS[name]
    widths = sorted({int(round(v)) for v in np.geomspace(lo, hi, count)})
    return RunConfig(TaskConfig(k=3, alpha=0.4, **task), ModelConfig(widths=widths),
                     TrainConfig(batch=batch, device=device, steps=10 ** 6))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().float().reshape(-1).cpu() for p in model.parameters()])


def _grads(model) -> torch.Tensor:
    """The gradient the last step left in ``.grad`` (every variant leaves it)."""
    return torch.cat([p.grad.detach().float().reshape(-1).cpu() for p in model.parameters()
                      if p.grad is not None])


def run_variant(base: RunConfig, variant: Variant, check_steps: int, seconds: float,
                max_timed: int) -> tuple[dict, dict]:
    """Train ``check_steps`` steps, then time steps for at most ``seconds``: a result dict,
    and the first step's gradient and the parameters after the check steps."""
    cfg = variant.configure(base)
    precision = variant.precision
    device = torch.device(cfg.train.device)
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision in ("tf32", "bf16")
    try:
        model, step_fn = new_step(cfg)
        t0 = time.perf_counter()
        for s in range(1, check_steps + 1):
            losses = step_fn(s)
            if s == 1:
                checked = dict(grad=_grads(model))
        _sync(device)
        checked["params"] = _params(model)
        warm = time.perf_counter() - t0
        s, n, t1 = check_steps, 0, time.perf_counter()
        while n < max_timed:            # timed steps, synchronised every 50
            for _ in range(50):
                s += 1
                step_fn(s)
            n += 50
            _sync(device)
            if time.perf_counter() - t1 > seconds:
                break
        per_step = (time.perf_counter() - t1) / n
        assert torch.isfinite(losses).all(), "non-finite loss"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = prev
    return dict(check_and_warmup_s=warm, timed_steps=n, s_per_step=per_step), checked


def describe(result: dict, n_networks: int, floor: dict) -> dict:
    """Add the derived figures: ms/step, network-steps/s, ratio to the paper's script,
    fraction of the floors."""
    t = result["s_per_step"]
    result.update(ms_per_step=1e3 * t, network_steps_per_s=n_networks / t,
                  ratio_to_paper=n_networks / t * PAPER_S_PER_STEP,
                  floor_fraction=floor["floor_s"] / t,
                  fused_floor_fraction=floor["fused_floor_s"] / t,
                  fig2_200k_steps_s=2e5 * t)
    return result


def check(result: dict, got: dict, ref: dict, init: torch.Tensor, precision: str) -> None:
    """The first step's gradient and the parameters after the check steps against the
    fp32 eager step's (TOLERANCE)."""
    moved = float((ref["params"] - init).norm())
    gap = float((got["params"] - ref["params"]).norm())
    g = float((got["grad"] - ref["grad"]).norm() / ref["grad"].norm())
    tol = TOLERANCE[precision]
    result["check"] = dict(grad_rel=g, rel=gap / moved if moved else math.inf,
                           max_abs=float((got["params"] - ref["params"]).abs().max()),
                           tolerance=tol)
    result["check"]["ok"] = passes(result["check"], precision)


def passes(check: dict, precision: str) -> bool:
    """A variant's check within today's tolerances (TOLERANCE); a check written before the
    gradient was compared is judged on its parameters alone."""
    tol = TOLERANCE[precision]
    return check.get("grad_rel", 0.0) <= tol["grad"] and check["rel"] <= tol["params"]


def line(r: dict) -> str:
    if r["status"] != "ok":
        return f"{r['name']:<46} {r['status']}: {r.get('error', '')}"
    c = r["check"]
    return (f"{r['name']:<46} {r['ms_per_step']:8.3f} ms/step  {r['network_steps_per_s']:10.0f} "
            f"net-steps/s  {r['ratio_to_paper']:8.0f}x paper  floor {r['floor_fraction']:5.2f}  "
            f"(fused {r['fused_floor_fraction']:5.2f})  Δg/g {c['grad_rel']:.1e}  Δθ/moved {c['rel']:.1e} "
            f"{'ok' if c['ok'] else 'OFF'}  [first {r['check_and_warmup_s']:.1f} s, "
            f"{r['timed_steps']} timed]")


def profile_variant(base: RunConfig, variant: Variant, steps: int = 20,
                    top: int = 15) -> list[dict]:
    """Where a variant's step spends its time: torch.profiler over ``steps`` steps after 5
    warm-up steps; the ``top`` operations by their own device time (CPU time on a CPU),
    per step."""
    from torch.profiler import ProfilerActivity, profile
    cfg = variant.configure(base)
    precision = variant.precision
    device = torch.device(cfg.train.device)
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = precision in ("tf32", "bf16")
    model, step_fn = new_step(cfg)
    for s in range(1, 6):
        step_fn(s)
    _sync(device)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for s in range(6, 6 + steps):
            step_fn(s)
        _sync(device)
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    rows = sorted(prof.key_averages(), key=lambda e: getattr(e, key), reverse=True)[:top]
    return [dict(name=e.key[:90], ms_per_step=getattr(e, key) / 1e3 / steps,
                 calls_per_step=e.count / steps) for e in rows]


def time_evaluations(base: RunConfig, precision: str = "bf16", repeats: int = 3) -> dict:
    """Seconds of one evaluation during training (every network on ``test_per_task``
    samples of every subtask), with the module's forward under autocast and with the
    control rows looked up (step option ``gather_in``): the median of ``repeats`` after a
    warm-up, and the hidden-unit-samples per second the queue's estimates use."""
    from empirical.parity.steps import matmul_dtype
    from empirical.parity.train import _autocast_factory, build_model, make_task
    cfg = Variant("manual", precision).configure(base)
    device = torch.device(cfg.train.device)
    task, model = make_task(cfg), build_model(cfg).to(device)
    per_task = cfg.train.test_per_task
    sub, bits = task.test_set(per_task, cfg.train.test_seed, device=device)
    y = task.label(sub, bits)
    autocast = _autocast_factory(precision, device)
    out = dict(precision=precision, samples=int(sub.shape[0]), hidden_units=sum(model.widths))
    for name, lookup in (("product", None), ("lookup", matmul_dtype(precision))):
        times = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            evaluate(model, task, sub, bits, y, per_task, cfg.train.eval_chunk, autocast, lookup)
            times.append(time.perf_counter() - t0)      # evaluate syncs: it copies to the CPU
        out[f"{name}_s"] = float(np.median(times[1:]))
    out["unit_samples_per_s"] = {k: out["samples"] * out["hidden_units"] / out[f"{k}_s"]
                                 for k in ("product", "lookup")}
    return out


class Menu:
    """The variants run one after another against the first (eager/fp32), within a
    deadline, the results kept in ``out`` (what --json writes)."""

    def __init__(self, base: RunConfig, seconds: float, check_steps: int, max_timed: int):
        self.base, self.check_steps, self.max_timed = base, check_steps, max_timed
        self.deadline = time.perf_counter() + seconds
        self.device = base.train.device
        H, t = sum(base.model.widths), base.task
        self.cost = step_cost(t.n_bits, H, base.train.batch, t.n_tasks + t.n_bits)
        self.floor = floors(self.cost)
        name = torch.cuda.get_device_name(0) if self.device.startswith("cuda") else "CPU"
        self.out = dict(device=name, torch=torch.__version__, config=base.to_dict(),
                        n_networks=len(base.model.widths), hidden_units=H, cost=self.cost,
                        floor_bf16=self.floor, paper_s_per_step=PAPER_S_PER_STEP,
                        tolerance=TOLERANCE, variants=[])
        self.ref = self.init = None

    def header(self, seconds: float) -> str:
        o, f = self.out, self.floor
        return (f"menu on {o['device']} (torch {o['torch']}): {o['n_networks']} networks, "
                f"H = {o['hidden_units']}, batch {self.base.train.batch}; floor "
                f"{f['floor_s'] * 1e3:.3f} ms/step (fused {f['fused_floor_s'] * 1e3:.3f}); "
                f"budget {seconds:.0f} s")

    def run(self, i: int, n: int, variant: Variant) -> dict:
        """Variant ``i`` of ``n``: measured and checked, skipped or failed."""
        r = dict(name=variant.name, **variant.fields(), status="ok")
        left = self.deadline - time.perf_counter()
        need = variant.setup_reserve()
        if variant.step.endswith("graphs") and not self.device.startswith("cuda"):
            return dict(r, status="skipped", error="CUDA graphs need a CUDA device")
        if left < need + 2.0:
            return dict(r, status="skipped", error=f"out of time ({left:.0f} s left, needs ~{need:.0f})")
        try:
            if self.init is None:
                self.init = _params(new_step(self.base)[0])
            share = (left - need) / max(1, n - i)
            res, got = run_variant(self.base, variant, self.check_steps, min(share, 30.0),
                                   self.max_timed)
            r.update(describe(res, self.out["n_networks"], self.floor))
            if self.ref is None and i == 0:   # the first variant, eager/fp32, is the reference
                self.ref = got
            if self.ref is None:
                r["check"] = dict(ok=False, rel=math.nan, grad_rel=math.nan,
                                  tolerance=TOLERANCE[variant.precision], note="no reference")
            else:
                check(r, got, self.ref, self.init, variant.precision)
        except Exception as e:     # a variant that fails is reported, the menu goes on
            r.update(status="error", error=f"{type(e).__name__}: {e}".splitlines()[0],
                     traceback=traceback.format_exc()[-2000:])
        finally:
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        return r

    def add(self, r: dict) -> None:
        """Record a variant's result and the fastest checked variant so far."""
        self.out["variants"].append(r)
        ok = [v for v in self.out["variants"] if v["status"] == "ok" and v["check"]["ok"]]
        if ok:
            b = min(ok, key=lambda v: v["s_per_step"])
            self.out["best"] = dict(
                name=b["name"], **Variant.of(b).fields(), s_per_step=b["s_per_step"],
                unit_steps_per_s=self.out["hidden_units"] / b["s_per_step"],
                batch=self.base.train.batch)


def default_variants(device: str) -> list[Variant]:
    """:data:`VARIANTS`; on a CPU, which has no CUDA graphs and compiles for minutes, the
    same arithmetic as eager kernels (step ``manual``, no ``autotune``)."""
    chosen = [Variant.parse(v) for v in VARIANTS]
    if device.startswith("cuda"):
        return chosen
    out = []
    for v in chosen:
        cpu = Variant("manual" if v.step.endswith("graphs") else v.step, v.precision,
                      v.compile_forward, tuple(o for o in v.options if o != "autotune"))
        if cpu not in out:
            out.append(cpu)
    return out


def _write(menu: Menu, path) -> None:
    if path:
        Path(path).write_text(json.dumps(menu.out, indent=1) + "\n")


def _profile_names(wanted: str | None, menu: Menu) -> list[str]:
    """The variants to profile: named, or ``best`` (default on CUDA): the menu's fastest
    checked variant without its CUDA graph, whose kernels the profiler then shows."""
    wanted = wanted or ("best" if menu.device.startswith("cuda") else "none")
    names = []
    for name in [] if wanted == "none" else wanted.split(","):
        if name == "best":
            if "best" not in menu.out:
                continue
            v = Variant.of(menu.out["best"])
            name = Variant(v.step.removesuffix("_graphs").replace("graphs", "manual"),
                           v.precision, v.compile_forward, v.options).name
        names.append(name)
    return names


def _profile(menu: Menu, names: list[str], json_path) -> None:
    for name in names:
        v = Variant.parse(name)
        if menu.deadline - time.perf_counter() < 15 + v.setup_reserve() / 4:
            print(f"profile {name}: skipped, out of time")
            continue
        try:
            rows = profile_variant(menu.base, v)
        except Exception as e:      # profiling is extra: report and go on
            print(f"profile {name}: {type(e).__name__}: {e}".splitlines()[0])
            continue
        menu.out.setdefault("profiles", {})[name] = rows
        print(f"profile {name} (own time per step, top {len(rows)}):")
        for r in rows:
            print(f"  {r['ms_per_step']:8.3f} ms  x{r['calls_per_step']:<5.1f} {r['name']}")
        _write(menu, json_path)


def _time_evaluations(menu: Menu, json_path) -> None:
    if menu.deadline - time.perf_counter() < 10:
        print("evaluation: skipped, out of time")
        return
    try:
        e = time_evaluations(menu.base)
    except Exception as e:          # extra, like the profiles
        print(f"evaluation: {type(e).__name__}: {e}".splitlines()[0])
        return
    menu.out["evaluation"] = e
    print(f"evaluation ({e['samples']} test samples x {e['hidden_units']} units, "
          f"{e['precision']}): {e['product_s'] * 1e3:.1f} ms with the module's forward, "
          f"{e['lookup_s'] * 1e3:.1f} ms with the control rows looked up (gather_in)")
    _write(menu, json_path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=200.0, help="the whole menu's budget")
    p.add_argument("--json", default=None, help="write the results here (after each variant)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="fig2")
    p.add_argument("--tiny", action="store_const", const="tiny", dest="config",
                   help="--config tiny (what the tests run)")
    p.add_argument("--device", default=None, help="default: cuda if present, else cpu")
    p.add_argument("--check-steps", type=int, default=50)
    p.add_argument("--max-timed", type=int, default=1000)
    p.add_argument("--variants", default=None,
                   help="comma-separated step[+compile_fwd][+option...]/precision to run "
                        "instead of the list (the first is the reference: eager/fp32)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--profile", default=None,
                   help="variants to profile after the menu, if time is left ('best', the "
                        "default on CUDA: the fastest checked one without CUDA graphs; "
                        "'none' for none)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    menu = Menu(menu_config(args.config, device), args.seconds, args.check_steps,
                args.max_timed)
    print(menu.header(args.seconds), flush=True)
    if args.variants is not None:
        chosen = [Variant.parse(v) for v in args.variants.split(",")]
    else:
        chosen = default_variants(device)
    for i, variant in enumerate(chosen):
        r = menu.run(i, len(chosen), variant)
        menu.add(r)
        print(line(r), flush=True)
        _write(menu, args.json)
        if i == 0:              # a few seconds; the queue's estimates use it
            _time_evaluations(menu, args.json)
    _profile(menu, _profile_names(args.profile, menu), args.json)
    if "best" in menu.out:
        b = menu.out["best"]
        print(f"best: {b['name']} at {b['s_per_step'] * 1e3:.3f} ms/step = "
              f"{b['unit_steps_per_s']:.3g} hidden-unit-steps/s at batch {b['batch']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
