"""benchmarks/gpu_session.sh, the GPU sessions' driver, on its CPU-sized plan: a call that
runs out of time pauses (status 75) and packs its resume state; after the machine is lost,
the carried pieces resume the run, which ends equal to an uninterrupted one."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from empirical.parity import is_complete, load_run

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_session.sh"


def session(tmp: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp / out), RUNS=str(tmp / "runs"),
               RESULTS=str(tmp / "results"), CARRY=str(tmp / "carry"))
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=300)


def unpack(parts_dir: Path, dest: Path) -> None:
    dest.mkdir()
    with open(dest / "all.tar", "wb") as f:
        for part in sorted(parts_dir.glob("gpu_tiny.tar.part-*")):
            f.write(part.read_bytes())
    with tarfile.open(dest / "all.tar") as t:
        t.extractall(dest, filter="data")


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("split") is None,
                    reason="needs bash and coreutils")
def test_paused_call_then_lost_machine_then_resume_equals_one_call(tmp_path):
    first = session(tmp_path, "out1", "run", "tiny", "0.5")
    assert first.returncode == 75, first.stdout + first.stderr
    parts = sorted((tmp_path / "out1").glob("tiny.resume.tar.part-*"))
    assert parts and not is_complete(tmp_path / "runs" / "tiny")

    shutil.rmtree(tmp_path / "runs")                  # the machine went back
    (tmp_path / "carry").mkdir()
    for p in parts:
        shutil.copy(p, tmp_path / "carry")
    second = session(tmp_path, "out2", "run", "tiny", "300")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "unpacked the carried resume state" in second.stdout
    unpack(tmp_path / "out2", tmp_path / "got")

    shutil.rmtree(tmp_path / "runs")
    shutil.rmtree(tmp_path / "carry")
    whole = session(tmp_path, "out3", "run", "tiny", "300")   # one uninterrupted call
    assert whole.returncode == 0, whole.stdout + whole.stderr
    unpack(tmp_path / "out3", tmp_path / "want")

    got, want = load_run(tmp_path / "got" / "gpu_tiny"), load_run(tmp_path / "want" / "gpu_tiny")
    assert is_complete(got.path) and got.checkpoint_steps() == want.checkpoint_steps()
    for key, value in want.metrics.items():
        if key != "wall_time":
            np.testing.assert_array_equal(got.metrics[key], value, err_msg=key)


def test_unknown_plan_is_an_error(tmp_path):
    res = session(tmp_path, "out", "run", "fig3")
    assert res.returncode == 2 and "unknown plan fig3" in res.stderr


def cpu_session(tmp: Path, out: str, *args: str, **env) -> subprocess.CompletedProcess:
    """The script in its CPU mode (CPU=1: the tiny menu and queue), state under ``tmp``."""
    full = dict(os.environ, PYTHON=sys.executable, OUT=str(tmp / out), RUNS=str(tmp / "runs"),
                RESULTS=str(tmp / "results"), CARRY=str(tmp / "carry"), CPU="1", **env)
    return subprocess.run(["bash", str(SCRIPT), *args], env=full, capture_output=True,
                          text=True, timeout=600)


def assert_within_transfer_limits(out: Path) -> None:
    """What the device tool brings back: at most 8 files of at most 16 MiB, 2 folders deep."""
    files = [p for p in out.rglob("*") if p.is_file()]
    assert 0 < len(files) <= 8, [p.name for p in files]
    assert all(p.stat().st_size <= 16 * 2 ** 20 for p in files)
    assert all(len(p.relative_to(out).parts) <= 3 for p in files)


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and coreutils")
def test_menu_times_and_checks_every_variant_within_its_seconds(tmp_path):
    """`menu SECONDS` end to end on the CPU: one line per variant (CUDA-graph variants
    skipped here; step options named after a +), each checked against fp32 after 50 steps,
    and one evaluation timed both ways, written to $OUT/menu.json, within the seconds
    given."""
    import json
    import time
    t0 = time.monotonic()
    opts = "manual+gather_in+gather_out+adam/bf16"
    res = cpu_session(tmp_path, "out", "menu", "60",
                      MENU_VARIANTS=f"eager/fp32,manual/fp32,manual/bf16,{opts},graphs/bf16")
    assert res.returncode == 0, res.stdout + res.stderr
    assert time.monotonic() - t0 < 60 + 10
    menu = json.loads((tmp_path / "out" / "menu.json").read_text())
    by = {v["name"]: v for v in menu["variants"]}
    assert by["graphs/bf16"]["status"] == "skipped"
    assert by[opts]["options"] == ["gather_in", "gather_out", "adam"]
    e = menu["evaluation"]
    assert e["product_s"] > 0 and e["lookup_s"] > 0 and "evaluation (" in res.stdout
    for name in ("eager/fp32", "manual/fp32", "manual/bf16", opts):
        v = by[name]
        assert v["status"] == "ok" and v["check"]["ok"], v
        assert v["ms_per_step"] > 0 and v["ratio_to_paper"] == pytest.approx(
            v["network_steps_per_s"] * 0.0598)
        assert name in res.stdout
    assert by["manual/fp32"]["check"]["rel"] < 1e-5 < by["manual/bf16"]["check"]["rel"]
    assert menu["best"]["name"] in by and "best:" in res.stdout


BENCH = ("before <!-- gpu:tiny_speed -->_GPU_<!-- /gpu:tiny_speed --> after\n"
         "menu: <!-- gpu:menu -->_GPU_<!-- /gpu:menu -->\n")


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and coreutils")
def test_next_runs_the_queue_across_fresh_machines_and_ingest_brings_it_home(tmp_path):
    """`next SECONDS` on the CPU queue: a first call too short to finish pauses its first
    plan and ships the resume state; the machine is lost; `ingest` puts the resume state
    into the carry folder; the next call resumes and finishes every plan, with exports that
    `ingest` unpacks (per α for the several-α plan) and that equal an uninterrupted
    training; the timed plan's figures land in the benchmarks file (marked as resumed);
    then the queue shows nothing left to do."""
    first = cpu_session(tmp_path, "out1", "next", "120", QUEUE_OPTS="--max-train 0")
    assert first.returncode == 75, first.stdout + first.stderr
    assert "tiny_speed: paused" in first.stdout
    assert_within_transfer_limits(tmp_path / "out1")
    assert list((tmp_path / "out1").glob("tiny_speed.resume.tar*"))

    shutil.rmtree(tmp_path / "runs")                          # the machine went back
    ing = cpu_session(tmp_path, "x", "ingest", str(tmp_path / "out1"))
    assert ing.returncode == 0 and list((tmp_path / "carry").glob("tiny_speed.resume.tar*"))
    # no mode: a GPU window, whose menu (the CPU queue has no committed one) times the
    # Triton kernels in Triton's interpreter, then the queue
    second = cpu_session(tmp_path, "out2", GPU_SECONDS="300", MENU_SECONDS="60",
                         MENU_VARIANTS="eager/fp32,manual+triton/bf16")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "no mode given: menu 60 (eager/fp32,manual+triton/bf16), then next" in second.stdout
    assert "manual+triton/bf16" in second.stdout and (tmp_path / "out2" / "menu.json").exists()
    assert "unpacked the carried resume state" in second.stdout
    assert "plans left: none" in second.stdout and "timing {" in second.stdout
    assert_within_transfer_limits(tmp_path / "out2")
    shutil.rmtree(tmp_path / "runs")
    bench = tmp_path / "BENCH.md"
    bench.write_text(BENCH)
    ing = cpu_session(tmp_path, "x", "ingest", str(tmp_path / "out2"),
                      QUEUE_OPTS=f"--benchmarks {bench}")
    assert ing.returncode == 0, ing.stdout + ing.stderr
    ns = sorted((tmp_path / "results" / "gpu_tiny_NS").iterdir())
    assert [d.name for d in ns] == ["alpha0.2", "alpha0.6"]
    text = bench.read_text()
    assert "tiny_speed -->_GPU_" not in text and "s end to end** (" in text, text
    assert "Resumed" in text and text.startswith("before <!-- gpu:tiny_speed -->")
    assert "--> after\n" in text
    # the menu's table where its markers are, the Triton variant checked against fp32
    assert "_GPU_" not in text and "| manual+triton/bf16 | " in text, text
    assert "One evaluation (" in text and " OFF " not in text
    est = cpu_session(tmp_path, "x", "plan", "--estimate")
    assert est.stdout.count("[done]") == 3, est.stdout

    # the paused-and-resumed timed plan equals its configuration trained in one go
    sys.path.insert(0, str(SCRIPT.parent))
    from gpu_queue import TINY_PLANS, plan_config
    from empirical.parity import train
    got = load_run(tmp_path / "results" / "gpu_tiny_speed_v2")
    cfg = plan_config(TINY_PLANS[0])
    cfg.train.device = "cpu"
    cfg.train.step, cfg.train.precision = got.config.train.step, got.config.train.precision
    want = load_run(train(cfg, tmp_path / "alone"))
    assert "eval_index" not in got.metrics                 # every evaluation was kept
    np.testing.assert_allclose(got.metrics["mean_test_loss"], want.metrics["mean_test_loss"],
                               rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="needs bash and coreutils")
def test_next_keeps_what_comes_back_within_64_mib_and_skips_what_cannot_come_back(tmp_path):
    """A resume state larger than what is left of $OUT's total (here 1 MiB of margin plus
    10 KiB) is not packed: the call says so and stays within the limit. Then, with a menu
    whose speed predicts more time than the call has, the one-call plan and the plans whose
    resume state could not come back are skipped, not started."""
    opts = "--out-limit-mib 1.01"
    first = cpu_session(tmp_path, "out1", "next", "120", QUEUE_OPTS=opts + " --max-train 0")
    assert first.returncode == 75, first.stdout + first.stderr
    assert "tiny_speed: paused" in first.stdout and "does not fit what comes back" in first.stdout
    out = tmp_path / "out1"
    assert sum(p.stat().st_size for p in out.iterdir()) <= 1.01 * 2 ** 20
    assert not list(out.glob("*.resume.tar*"))

    shutil.rmtree(tmp_path / "runs")
    slow = _menu([("eager", "fp32", 10.0, 1.0, dict(rel=0.0, ok=True))], hidden=10, batch=64)
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "menu.json").write_text(json.dumps(slow))
    second = cpu_session(tmp_path, "out2", "next", "100", QUEUE_OPTS=opts)
    assert second.returncode == 75, second.stdout + second.stderr
    said = second.stdout
    assert "tiny_speed: needs" in said and "(it runs in one call)" in said, said
    for plan in ("tiny_NS", "tiny_D"):
        assert f"{plan}: needs" in said and "would not come back" in said, said
    assert "$ -m quanta" not in said and not (tmp_path / "runs" / "tiny_speed").exists()


def test_the_resume_state_size_formula_matches_real_resume_states(tmp_path):
    """gpu_queue.resume_bytes against the packed config.json + resume.pt of real paused
    runs (several α and seeds; finite D): the per-parameter (12 bytes) and per-metric terms
    are right within the fixed 64 KiB allowance, so the formula scales to the GPU plans."""
    q = _queue_module()
    from empirical.parity import ModelConfig, RunConfig, TaskConfig, TrainConfig, train
    configs = [
        RunConfig(TaskConfig(n_tasks=64, n_bits=32, alpha=0.2, alphas=[0.2, 0.5]),
                  ModelConfig(widths=[50, 100, 200, 300]),
                  TrainConfig(steps=1000, batch=64, seeds=[0, 1], eval_points=40,
                              checkpoints=2, test_per_task=4, device="cpu")),
        RunConfig(TaskConfig(n_tasks=200, n_bits=40),
                  ModelConfig(widths=[400, 600]),
                  TrainConfig(steps=5000, batch=64, D=[100, 1000, 10000], eval_points=60,
                              checkpoints=2, test_per_task=2, device="cpu", step="manual")),
    ]
    for i, cfg in enumerate(configs):
        run = tmp_path / f"run{i}"
        train(cfg, run, time_limit_s=0.0)                  # paused after one step
        (tmp_path / f"out{i}").mkdir()
        call = q.Call(60, tmp_path / f"out{i}", tmp_path / "log")
        packed = call.pack(tmp_path, [f"run{i}/config.json", f"run{i}/checkpoints/resume.pt"],
                           f"run{i}.resume.tar")
        real = sum(p.stat().st_size for p in packed)
        est = q.resume_bytes(cfg)
        assert real > 2 ** 20 and real <= est <= real + 64 * 1024, (i, real, est)


def test_packing_respects_the_files_the_bytes_per_file_and_the_bytes_in_all(tmp_path):
    """Call.pack: a tar over 16 MiB goes in 15 MiB pieces; what would break 8 files or
    the total (less the log's margin) is refused, and nothing is left behind."""
    q = _queue_module()
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for name, mib in (("a", 25), ("b", 38), ("c", 1)):
        (src / name).write_bytes(os.urandom(mib * 2 ** 20))
    call = q.Call(60, out, out / "log", limit=64 * 2 ** 20)
    call.say("log")
    parts = call.pack(src, ["a"], "a.tar")
    assert [p.name for p in parts] == ["a.tar.part-aa", "a.tar.part-ab"]
    assert max(p.stat().st_size for p in parts) <= 16 * 2 ** 20
    assert call.pack(src, ["b"], "b.tar") is None                   # 25 + 38 > 64 - 1
    assert call.pack(src, ["c"], "c.tar")[0].name == "c.tar"
    assert sorted(p.name for p in out.iterdir()) == ["a.tar.part-aa", "a.tar.part-ab",
                                                     "c.tar", "log"]
    assert call.used() <= 63 * 2 ** 20 and "4 of 8" in call.summary()
    small = q.Call(60, out, out / "log", limit=64 * 2 ** 20)
    for i in range(4):                                              # 8 files at most
        assert small.pack(src, ["c"], f"c{i}.tar") is not None
    assert small.pack(src, ["c"], "c9.tar") is None and small.files() == 8


def _queue_module():
    sys.path.insert(0, str(SCRIPT.parent))
    import gpu_queue
    return gpu_queue


def _menu(variants, hidden=100, batch=1000):
    return dict(hidden_units=hidden, config=dict(train=dict(batch=batch)),
                variants=[dict(name=f"{s}/{p}", step=s, precision=p, compile_forward=False,
                               status="ok", s_per_step=t, check_and_warmup_s=w, check=c)
                          for s, p, t, w, c in variants])


def test_queue_picks_the_variant_that_finishes_a_plan_soonest_under_todays_tolerances():
    """Compilation counts (a slow-to-compile variant loses a short plan, wins a long one),
    and a menu written with older, stricter flags is judged by today's tolerances (one
    without the gradient check on its parameters alone); failing or off variants are out."""
    q = _queue_module()
    ok_params = dict(rel=0.17, ok=False)                   # df917f2's flag, bf16
    menu = _menu([("eager", "fp32", 5e-3, 1.0, dict(rel=0.0, ok=True)),
                  ("manual", "bf16", 3e-3, 1.0, ok_params),
                  ("compiled", "bf16", 2e-3, 60.0, ok_params),
                  ("graphs", "bf16", 1e-3, 1.0, dict(rel=0.9, grad_rel=0.5, ok=False))])
    speed = dict(menus=[menu], source="test")
    steps = lambda n: dict(unit_samples=100 * 1000 * n, eval_unit_samples=0)  # noqa: E731
    short, long = q.choose_variant(speed, steps(1000)), q.choose_variant(speed, steps(10 ** 6))
    assert short["name"] == "manual/bf16" and short["seconds"] == pytest.approx(
        q.START_S + 1.0 + 3.0)
    assert long["name"] == "compiled/bf16" and long["seconds"] == pytest.approx(
        q.START_S + 60.0 + 2000.0)
    assert all(not q.variant_ok(v) for v in menu["variants"] if v["step"] == "graphs")


def test_a_failed_variant_is_retried_with_the_next_measured_one_if_that_can_do():
    """A step that passed the menu but broke in training (the Triton kernels, say) is
    replaced by the next fastest measured variant, not by the speed before any menu; a plan
    that must beat a time is not retried with a variant that would not."""
    q = _queue_module()
    ok = dict(rel=0.1, grad_rel=0.01)
    speed = dict(menus=[_menu([("graphs", "bf16", 1e-3, 1.0, ok),
                               ("manual", "bf16", 2e-3, 1.0, ok),
                               ("eager", "bf16", 9e-3, 1.0, ok)])], source="test")
    plan = dict(q.TINY_PLANS[0])
    size = q.plan_size(plan)
    failed = q.choose_variant(speed, size)
    assert failed["name"] == "graphs/bf16"
    again = q.fallback_variant(plan, speed, failed)
    assert again["name"] == "manual/bf16"
    assert again["seconds"] == pytest.approx(q.choose_variant(
        dict(speed, failed={"graphs/bf16"}), size)["seconds"])
    assert q.fallback_variant(dict(plan, beat_s=again["seconds"]), speed, failed) is None
    assert q.fallback_variant(dict(plan, beat_s=again["seconds"] + 1), speed, failed) == again
    alone = dict(menus=[_menu([("graphs", "bf16", 1e-3, 1.0, ok)])], source="test")
    assert q.fallback_variant(plan, alone, failed)["name"] == q._variant(q.DEFAULT_SPEED).name


def test_a_window_times_only_what_the_committed_menu_lacks(tmp_path, capsys):
    """`unmeasured` (the no-mode window's question): exit 0 and the menu's variants (the
    reference, the missing ones, the best so far and max-autotune) while a variant of
    MEASURE_NEXT has no result; a skipped one counts as missing, a failed one as measured;
    3 when none is missing."""
    q = _queue_module()
    from parity_menu import MEASURE_NEXT, WINDOW_AFTER, WINDOW_BEFORE
    ok = dict(rel=0.1, grad_rel=0.01)
    menu = _menu([("compiled_graphs", "bf16", 1e-3, 1.0, ok)])
    first, second = MEASURE_NEXT
    menu["variants"] += [dict(menu["variants"][0], name=first, status="error"),
                         dict(menu["variants"][0], name=second, status="skipped")]
    for v in menu["variants"][1:]:
        v["step"], v["options"] = v["name"].split("+")[0], v["name"].split("/")[0].split("+")[1:]
    args = type("Args", (), dict(tiny=False))()
    q.SPEED_FILE, saved = tmp_path / "committed.json", q.SPEED_FILE
    try:
        q.SPEED_FILE.write_text(json.dumps(menu))
        assert q.unmeasured(args) == 0
        assert capsys.readouterr().out.splitlines()[-1] == ",".join(
            WINDOW_BEFORE + [second] + WINDOW_AFTER)
        menu["variants"][2]["status"] = "ok"
        q.SPEED_FILE.write_text(json.dumps(menu))
        assert q.unmeasured(args) == q.ALL_MEASURED == 3
    finally:
        q.SPEED_FILE = saved


def test_a_failed_attempt_at_a_faster_step_does_not_stop_the_queue(tmp_path, monkeypatch):
    """The timed plan with ``beat_s`` fails (its fast step breaks in training): the queue
    goes on with the next plan; any other failed plan stops the call, as before."""
    q = _queue_module()
    ran = []
    outcome = {"fast": "failed", "after": "done", "broken": "failed", "last": "done"}
    monkeypatch.setattr(q, "done", lambda plan, *a, **k: False)
    monkeypatch.setattr(q, "_startable", lambda *a: True)
    monkeypatch.setattr(q, "run_plan", lambda plan, *a: ran.append(plan["name"])
                        or outcome[plan["name"]])
    monkeypatch.setattr(q, "load_speed", lambda *a: dict(q.TINY_SPEED))
    args = type("Args", (), dict(out=str(tmp_path / "out"), seconds=1e4, reserve=0.0,
                                 out_limit=q.MAX_OUT_BYTES, tiny=True, runs=tmp_path / "runs",
                                 min_train=0.0, results=tmp_path, carry=tmp_path))()
    for names, want in ((["fast", "after"], ["fast", "after"]),
                        (["broken", "last"], ["broken"])):
        ran.clear()
        monkeypatch.setattr(q, "plans", lambda tiny: [dict(name=n, beat_s=100.0)
                                                      if n == "fast" else dict(name=n)
                                                      for n in names])
        assert q.next_plans(args) == 75 and ran == want


def test_ingest_keeps_the_committed_measurements_a_menu_did_not_repeat():
    """A window's menu times a few variants: merged into the committed menu, it replaces
    those it ran, keeps the others (marked with the menu that measured them) and the
    evaluation; a menu of another configuration replaces the committed one whole."""
    q = _queue_module()
    ok = dict(rel=0.1, grad_rel=0.01)
    old = _menu([("compiled_graphs", "bf16", 1e-3, 1.0, ok), ("graphs", "bf16", 2e-3, 1.0, ok),
                 ("manual", "bf16", 3e-3, 1.0, ok)])
    old.update(device="H200 (old)", torch="2.11", evaluation=dict(product_s=0.03))
    new = _menu([("compiled_graphs", "bf16", 0.9e-3, 1.0, ok), ("graphs", "bf16", 1.0, 1.0, ok)])
    new["variants"][1]["status"] = "skipped"
    new.update(device="H200 (new)", torch="2.11")
    merged = q.merge_menus(new, old)
    by = {v["name"]: v for v in merged["variants"]}
    assert sorted(by) == ["compiled_graphs/bf16", "graphs/bf16", "manual/bf16"]
    assert by["compiled_graphs/bf16"]["s_per_step"] == 0.9e-3
    assert by["graphs/bf16"]["s_per_step"] == 2e-3 and by["graphs/bf16"]["menu_device"] == "H200 (old)"
    assert "menu_device" not in by["compiled_graphs/bf16"]
    assert merged["evaluation"] == old["evaluation"] and merged["device"] == "H200 (new)"
    other = dict(new, hidden_units=7)
    assert q.merge_menus(other, old) == other


def test_this_calls_menu_overrides_the_committed_one_and_compilation_has_a_floor(tmp_path):
    """Speeds: a variant this call's menu measured replaces the committed measurement (a
    variant failing now is out, even if it passed before); variants only the committed menu
    has still count; a compiled variant whose measured warm-up was a cached compilation
    (0.07 s after its CUDA-graph sibling) is budgeted at least COMPILE_FLOOR_S; the
    evaluation rate comes from the menu that measured it, by the variant's options."""
    q = _queue_module()
    ok = dict(rel=0.1, grad_rel=0.01)
    now = _menu([("compiled", "bf16", 1e-3, 0.07, ok), ("graphs", "bf16", 1e-3, 1.0, ok)])
    now["variants"][1]["status"] = "error"
    now["variants"].append(dict(now["variants"][0], name="compiled+gather_in/bf16",
                                options=["gather_in"], s_per_step=0.5e-3))
    now["evaluation"] = dict(unit_samples_per_s=dict(product=1e9, lookup=4e9))
    before = _menu([("compiled", "bf16", 2e-3, 20.0, ok), ("graphs", "bf16", 1.5e-3, 1.0, ok),
                    ("manual", "bf16", 3e-3, 1.0, ok)])
    (tmp_path / "menu.json").write_text(json.dumps(now))
    q.SPEED_FILE, saved = tmp_path / "committed.json", q.SPEED_FILE
    try:
        q.SPEED_FILE.write_text(json.dumps(before))
        by = {v["name"]: v for v in q.measured_variants(q.load_speed(tmp_path))}
    finally:
        q.SPEED_FILE = saved
    assert sorted(by) == ["compiled+gather_in/bf16", "compiled/bf16", "manual/bf16"]
    assert by["compiled/bf16"]["rate"] == pytest.approx(100 * 1000 / 1e-3)
    assert by["compiled/bf16"]["warmup_s"] == q.COMPILE_FLOOR_S["compiled"]
    assert by["compiled+gather_in/bf16"]["eval_rate"] == 4e9
    assert by["compiled/bf16"]["eval_rate"] == 1e9 and by["manual/bf16"]["eval_rate"] == 1e9


def test_a_paused_slow_run_is_restarted_when_a_fresh_fast_one_finishes_sooner(tmp_path):
    """A plan paused with a slow step (the first GPU call, whose menu flags left only
    eager/fp32) is started afresh with the fast step when that finishes sooner than
    resuming, and resumed when it does not."""
    q = _queue_module()
    from empirical.parity import train
    plan = q.TINY_PLANS[2]
    cfg = q.plan_config(plan)
    cfg.train.device = "cpu"
    run_dir = tmp_path / plan["name"]
    train(cfg, run_dir, time_limit_s=0.0)                  # paused after one step, eager/fp32
    units = q.plan_size(plan)["unit_samples"]
    slow = dict(rate=units / 1000.0, warmup_s=0.0, step="eager", precision="fp32",
                compile_forward=False, source="test")

    class Quiet:
        said = []

        def say(self, text):
            self.said.append(text)
    fast = dict(step="manual", precision="bf16", compile_forward=False, options=[],
                name="manual/bf16", seconds=10.0)
    got = q._resume_or_restart(plan, slow, dict(fast), run_dir, Quiet())
    assert got["step"] == "manual" and not run_dir.exists() and "afresh" in Quiet.said[-1]
    train(cfg, run_dir, time_limit_s=0.0)
    sluggish = dict(fast, seconds=5000.0)
    got = q._resume_or_restart(plan, slow, dict(sluggish), run_dir, Quiet())
    assert (got["step"], got["precision"]) == ("eager", "fp32") and run_dir.exists()


def test_ingest_of_a_missing_folder_is_refused(tmp_path):
    """A mistyped returned-$OUT path is an error (it said nothing and exited 0)."""
    res = cpu_session(tmp_path, "x", "ingest", str(tmp_path / "no-such-call"))
    assert res.returncode == 2 and "not a folder" in res.stderr
    assert not (tmp_path / "results").exists()


def test_help_prints_the_whole_header(tmp_path):
    """`help` prints the script's header comment, every line of it (a hand-kept line range
    went stale once when the header grew)."""
    lines = SCRIPT.read_text().splitlines()
    header = lines[1:lines.index("set -uo pipefail")]
    res = session(tmp_path, "out", "help")
    assert res.returncode == 0 and res.stdout.splitlines() == header
