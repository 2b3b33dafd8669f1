#!/usr/bin/env bash
# The GPU work of issue #5, in pieces that fit the device tool: at most 600 s per call,
# 30 device-minutes per session, and a bare machine once it has idled 30 s.
#
#   bash benchmarks/gpu_session.sh check             # GPU facts, pytest -m gpu, the benchmark
#   bash benchmarks/gpu_session.sh run PLAN [SECONDS] # train PLAN for SECONDS (default 540)
#
# PLAN is fig2_NS, fig2_D, alpha_0.1 … alpha_0.8 (any α), alpha_0.4_fp32 (the precision
# check) or tiny (a CPU-sized run that tests this script). `run` trains runs/PLAN with
# --time-limit, so a call pauses cleanly and the next one goes on with --resume:
#   - paused: the resume state (config, metrics, last checkpoint) goes to
#     $OUT/PLAN.resume.tar.part-* (15 MiB pieces). The runs/ folder survives between calls
#     only while the machine stays warm; if it went back, put the pieces into .gpu/ here
#     (git-ignored) and call again with carry [".gpu"]: the script unpacks them. Log-spaced
#     checkpoints written before such a restart are lost; metrics are not.
#   - done: `quanta parity export` writes results/parity/gpu_PLAN (per-subtask losses in
#     float16, no per-subtask accuracy; α plans 50 evaluations; fig2_NS also the final
#     checkpoint, model-only) and $OUT/gpu_PLAN.tar.part-* hold it:
#     `cat gpu_PLAN.tar.part-* | tar -x -C results/parity` here, and commit.
# Exit status: 0 done, 75 paused (call again), anything else an error.
# PYTHON names the interpreter (default python3, the GPU image's, which has every
# dependency; the project runs from the checkout, not installed). RUNS, RESULTS and CARRY
# move runs/, results/parity/ (runs/results/ for the tiny plan) and .gpu/ (the tests do).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/quanta-gpu-out}
RUNS=${RUNS:-runs} RESULTS=${RESULTS:-} CARRY=${CARRY:-.gpu}
mkdir -p "$OUT" "$RUNS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
quanta() { "$PY" -m quanta "$@"; }

FIG2="--n-tasks 500 --n-bits 100 --k 3 --batch 20000 --steps 200000 --eval-points 100"
GPU="--precision bf16 --compile --save-every 60 --quiet"
plan_args() {  # the `quanta parity train` arguments of a plan (README, parity section)
    case "$1" in
        fig2_NS) echo "$FIG2 --alpha 0.4 --width-grid 9 500 30 --checkpoints 20 $GPU" ;;
        fig2_D) echo "$FIG2 --alpha 0.4 --widths 500 --D-grid 10000 5000000 30 --checkpoints 10 $GPU" ;;
        alpha_*_fp32) a=${1#alpha_}; a=${a%_fp32}
            echo "$FIG2 --alpha $a --width-grid 9 300 12 --seeds 0 1 2 --checkpoints 5 --precision fp32 --save-every 60 --quiet" ;;
        alpha_*) echo "$FIG2 --alpha ${1#alpha_} --width-grid 9 300 12 --seeds 0 1 2 --checkpoints 5 $GPU" ;;
        tiny) echo "--n-tasks 6 --n-bits 8 --widths 4 8 --steps 1500 --batch 64 --eval-points 10 --checkpoints 3 --test-per-task 8 --device cpu --threads 1 --quiet" ;;
        *) echo "unknown plan $1" >&2; return 2 ;;
    esac
}

check() {
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" -c "import torch, numba, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numba', numba.__version__)"
    timeout 150 "$PY" -m pytest -q -m gpu tests 2>&1 | tail -15
    # the issue's configuration: Figure-2 widths, 500 subtasks, 100 bits, batch 20 000
    local bench="--device cuda --n-tasks 500 --n-bits 100 --width-grid 9 500 30 --batch 20000"
    timeout 200 "$PY" benchmarks/bench_parity.py $bench --steps 300 --ref-steps 200 --ref-widths 3 --precision tf32
    timeout 200 "$PY" benchmarks/bench_parity.py $bench --steps 300 --ref-steps 50 --ref-widths 1 --precision bf16 --compile
}

run() {
    local plan=$1 budget=${2:-540} dir=$RUNS/$1 args status
    args=$(plan_args "$plan") || return 2
    if [ ! -f "$dir/config.json" ] && compgen -G "$CARRY/$plan.resume.tar.part-*" >/dev/null; then
        cat "$CARRY/$plan.resume.tar.part-"* | tar -x -C "$RUNS" -f - \
            && echo "unpacked the carried resume state of $plan"
    fi
    local resume=""
    [ -f "$dir/config.json" ] && resume=--resume
    quanta parity train --out "$dir" $args $resume --time-limit "$budget"
    status=$?
    rm -f "$OUT/$plan.resume.tar.part-"*
    if [ $status -eq 75 ]; then
        tar -C "$RUNS" -c -f - "$plan/config.json" "$plan/metrics.npz" "$plan/checkpoints/resume.pt" \
            | split -b 15M - "$OUT/$plan.resume.tar.part-"
        ls -l "$OUT"
        return 75
    fi
    [ $status -eq 0 ] || return $status
    # compact: per-subtask losses only (float16); the α sweep keeps 50 of its evaluations;
    # the N/S sweep also keeps its final model, for QDG at scale (~5 MB in float16)
    local keep="--no-accuracy"
    case "$plan" in
        fig2_NS|tiny) keep="$keep --checkpoints $("$PY" -c "from empirical.parity import load_run; print(load_run('$dir').checkpoint_steps()[-1])")" ;;
        alpha_*) keep="$keep --max-evals 50" ;;
    esac
    # the tiny test plan exports beside its run, never into the committed results
    local results=${RESULTS:-results/parity}
    [ -n "$RESULTS" ] || [ "$plan" != tiny ] || results="$RUNS/results"
    mkdir -p "$results"
    rm -rf "$results/gpu_$plan"
    quanta parity export "$dir" "$results/gpu_$plan" $keep || return $?
    tar -C "$results" -c -f - "gpu_$plan" | split -b 15M - "$OUT/gpu_$plan.tar.part-"
    ls -l "$OUT"
}

case "${1:-}" in
    check) check ;;
    run) shift; run "$@" ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
esac
