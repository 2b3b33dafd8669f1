#!/usr/bin/env bash
# The GPU work of the parity trainer, in calls that each finish in the time given.
#
#   bash benchmarks/gpu_session.sh menu SECONDS       # time and check every step variant
#   bash benchmarks/gpu_session.sh next SECONDS       # train the next plans of the queue
#   bash benchmarks/gpu_session.sh plan --estimate    # the queue: sizes, predicted seconds, state
#   bash benchmarks/gpu_session.sh ingest DIR         # unpack a call's returned $OUT (here)
#   bash benchmarks/gpu_session.sh check              # GPU facts, pytest -m gpu, the benchmark
#   bash benchmarks/gpu_session.sh run PLAN [SECONDS] # train one named plan (below)
#   bash benchmarks/gpu_session.sh                    # no mode: a GPU window (below)
#
# menu: benchmarks/parity_menu.py on the Figure-2 sweep (30 widths, batch 20 000): ms/step,
#   network-steps/s, ratio to the paper's script (0.0598 s/step), fraction of the floor and
#   the check against fp32 (first gradient, parameters after 50 steps), for every step
#   variant (with step options: gather_in, gather_out, adam, autotune, triton), then one evaluation
#   timed both ways and the fastest variant profiled; printed and written to $OUT/menu.json.
#   Stops itself within SECONDS and exits 0.
# next: benchmarks/gpu_queue.py: the queue's plans in order (fig2_NS_speed: the Figure-2 N/S
#   sweep end to end, timed, exported as gpu_fig2_NS_v2; the Figure-2 D sweep; the Figure-10
#   α sweep in pairs of α; the α sweep of D), as many as fit in SECONDS, each with the
#   variant that finishes it soonest at the speeds of this call's menu and
#   benchmarks/gpu_speed.json (compilation and evaluations included); each finished plan's
#   export is packed as $OUT/gpu_EXPORT.tar; a plan stopped by the time limit ships its
#   resume state as $OUT/PLAN.resume.tar[.part-*] when it fits what comes back (8 files,
#   16 MiB each, 64 MiB together); a plan whose resume state would not fit, or marked
#   one-call (fig2_NS_speed), starts only when predicted to finish. Exit 0: queue done;
#   75: plans left.
# no mode (what a GPU window runs): when the committed menu (benchmarks/gpu_speed.json) lacks
#   a variant of parity_menu.MEASURE_NEXT (today the Triton kernels), `menu $MENU_SECONDS`
#   (240) of those, the reference, the best step so far and max-autotune first, then `next`
#   for what is left of $GPU_SECONDS (540); else `next $GPU_SECONDS`. The queue's first
#   plan, fig2_NS_speed3 (the Figure-2 sweep timed again), starts only when a measured
#   variant is predicted under the 164 s of the last.
# Between calls: copy $OUT back, run `ingest DIR` on it here (exports -> results/parity/,
#   resume state -> .gpu/, menu -> benchmarks/gpu_speed.json, the timed plan's wall time ->
#   BENCHMARKS.md), commit results/parity/gpu_*, benchmarks/gpu_speed.json and
#   BENCHMARKS.md, and send the next call with carry [".gpu"] if .gpu/ holds resume state.
#   Copying $OUT straight into .gpu/ (and carrying it) also works: packed exports there
#   count as done, resume state there is resumed.
# CPU=1 runs menu, next and plan on a CPU-sized configuration and queue (the tests do);
# MENU_VARIANTS (e.g. eager/fp32,compiled_graphs+gather_in/bf16) and QUEUE_OPTS (e.g.
# --reserve 60, --max-train 0) adjust them.
#
# run PLAN: PLAN is fig2_NS, fig2_D, alpha_0.1 … alpha_0.8 (any α), alpha_0.4_fp32 (the
# precision check) or tiny (a CPU-sized run that tests this script). `run` trains runs/PLAN
# with --time-limit, so a call pauses cleanly and the next one goes on with --resume:
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
    # one batched draw against one generator per stream, 30 streams (the D sweep)
    for D in 0 100000; do
        timeout 60 "$PY" benchmarks/bench_parity.py --device cuda --samplers 30 --D $D --n-tasks 500 --n-bits 100 --batch 20000 --steps 50
    done
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

queue_args() {  # where the queue keeps its state, and the CPU-sized queue when CPU=1
    local a=(--runs "$RUNS" --carry "$CARRY")
    [ -n "$RESULTS" ] && a+=(--results "$RESULTS")
    [ -n "${CPU:-}" ] && a+=(--tiny --device cpu)
    echo "${a[@]}" ${QUEUE_OPTS:-}
}

seconds() {  # SECONDS argument: a positive integer
    case "${1:-}" in ''|*[!0-9]*) echo "$2 needs SECONDS (a whole number), got '${1:-}'" >&2; return 2 ;; esac
}

menu() {
    seconds "${1:-}" menu || return 2
    local budget=$1 tiny=""
    [ -n "${CPU:-}" ] && tiny="--tiny --device cpu --threads 1"
    # the menu stops starting variants 20 s before the end (start-up, the last variant);
    # timeout is the hard stop. It writes $OUT/menu.json after every variant.
    timeout -k 5 "$budget" "$PY" benchmarks/parity_menu.py --seconds $((budget > 40 ? budget - 20 : budget / 2)) \
        --json "$OUT/menu.json" $tiny ${MENU_VARIANTS:+--variants "$MENU_VARIANTS"}
    local status=$?
    [ $status -eq 0 ] || echo "menu: stopped with status $status (what it measured is in $OUT/menu.json)"
    ls -l "$OUT"
    return 0
}

next_plans() {
    seconds "${1:-}" next || return 2
    local budget=$1
    timeout -k 5 "$budget" "$PY" benchmarks/gpu_queue.py next --seconds $((budget > 30 ? budget - 10 : budget)) \
        --out "$OUT" $(queue_args)
    local status=$?
    ls -l "$OUT"
    return $status
}

window() {  # no mode: a GPU window's default (header)
    local total=${GPU_SECONDS:-540} menu_s=${MENU_SECONDS:-240} variants status start
    seconds "$total" GPU_SECONDS || return 2
    seconds "$menu_s" MENU_SECONDS || return 2
    variants=$("$PY" benchmarks/gpu_queue.py unmeasured $(queue_args))
    status=$?
    if [ "$status" -eq 3 ] || [ "$menu_s" -eq 0 ] || [ "$menu_s" -ge "$total" ]; then
        echo "no mode given: next $total (the modes: bash $0 help)"
        next_plans "$total"
        return
    fi
    # status 0: the variants to time; anything else (a crash): the menu's default list
    [ "$status" -eq 0 ] || variants=""
    variants=${MENU_VARIANTS:-$(echo "$variants" | tail -n 1)}
    echo "no mode given: menu $menu_s${variants:+ ($variants)}, then next with the rest of $total s"
    start=$SECONDS
    MENU_VARIANTS=$variants menu "$menu_s"
    next_plans $((total - (SECONDS - start)))
}

case "${1:-}" in
    check) check ;;
    run) shift; run "$@" ;;
    menu) shift; menu "$@" ;;
    next) shift; next_plans "$@" ;;
    plan) [ "${2:-}" = --estimate ] || { echo "usage: plan --estimate" >&2; exit 2; }
          "$PY" benchmarks/gpu_queue.py estimate --out "$OUT" $(queue_args) ;;
    ingest) [ -n "${2:-}" ] || { echo "usage: ingest DIR (a call's returned \$OUT)" >&2; exit 2; }
            "$PY" benchmarks/gpu_queue.py ingest "$2" $(queue_args) ;;
    "") window ;;
    help|-h|--help) sed -n '2,59p' "$0" ;;
    *) sed -n '2,59p' "$0"; exit 2 ;;
esac
