#!/usr/bin/env bash
# One prepared command for a session on a lent GPU machine (a fresh machine that reaches no package index).
#
#   make device-kit                               # here, once: .whl/ (missing packages) and .devdata/raw/ (data)
#   bash scripts/device_session.sh PLAN [BUDGET_S] # there, with .whl and .devdata carried along
#
# PLAN:
#   check  GPU tests (tests/test_gpu.py: CUDA graphs against eager, compile modes, gpu_pool on the GPU)
#   bench  check (but the compile tests), then `python -m fmnist.bench`, most important first: naive vs ours
#          (eager, CUDA graphs) for 4 models at batch 128 and 512, the time-to-accuracy presets fast and fast95,
#          torch.compile modes on ResNet18 at 128 and 512, and jobs-per-GPU throughput (K = 1, 4, 8; the study
#          plan measures the real thing). BENCH_STEPS picks steps (default "tests throughput tta compile
#          concurrency"); TTA_PRESETS (fast fast95), TTA_OVERRIDES (e.g. trainer.tta_flip=false), TTA_EPOCHS
#          (each preset once per number of epochs, e.g. "12 16") and COMPILE_BATCHES (128 512) adjust them.
#          Before a study in the same call, e.g.:
#          BENCH_STEPS=tta TTA_PRESETS=fast TTA_EPOCHS="12 16" bash scripts/device_session.sh bench 100
#          The jobs-per-GPU step: CONC_K (1 4 8), CONC_JOBS (8), CONC_OVERRIDES (model=resnet9 trainer.epochs=2)
#   study  the study through gpu_pool into multirun/study/<preset>/, as much as the budget allows: preset after
#          preset (STUDY_PRESETS, default: the cheap presets behind the report's main questions first), each with
#          all its seeds (SEEDS=all, the default; SEEDS="0 1" runs seed after seed instead). Here, before: make study-pack (parks the committed study, writes the
#          .devstudy kit of its summaries: finished runs are skipped there). After: make study-unpack PARTS=<the
#          returned files>, commit, and run it again in a later session until the study is complete. No job
#          starts in the last JOB_MARGIN s (default 120) of the budget, unless the longest job its preset trained
#          in this session (+15 %) still fits (hydra.launcher.end); the runs still cut off start again later.
#          Checkpoints every 10 epochs: a full-width last.pt is ~50 MB, written with fsync
#
# MPS=1 (either plan) runs the session's GPU work under CUDA MPS; MPS=auto (study plan) measures first whether
# it helps (see below). The bench JSON records "mps".
#
# Every step gets what is left of BUDGET_S (default 540 s) and is skipped when too little is left. Results
# go to $OUT (the device tool's folder; ./device-out elsewhere): session.log, bench_*.json with bench.md (their
# tables for the README: python -m fmnist.bench.markdown), and the run dirs
# the study finished in this session, without checkpoints, as study.tar.gz.part-* (make study-unpack; the session
# exits with status 1 when that archive cannot be written).
# TINY=1 runs every step at CPU size (the CI smoke test of this script). Study knobs: SEEDS, K (jobs on the GPU in
# all, 8: the CONCURRENT presets share K slots through hydra.launcher.shared_slots), CONCURRENT (presets at once,
# 3), JOB_MARGIN, STUDY_ROOT (where multirun/study/ goes; outside the repo, e.g. /tmp/fmnist-study, a second call
# on the same warm machine finds the first call's runs there and returns only its own), STUDY_KIT (.devstudy),
# CHECK_GRAPHS (1: the CUDA-graph checks of tests/test_gpu.py before the study; 0 once a session passed them).
# CHECK_CAP (240): the most seconds the GPU tests of the bench and study plans may take (a hang costs no more).
set -u
cd "$(dirname "$0")/.."  # the repo root
PLAN=${1:-bench}
BUDGET=${2:-540}
case "$PLAN" in check | bench | study) ;; *)
  echo "unknown plan '$PLAN': choose check, bench or study" >&2
  exit 2
  ;;
esac
[[ "$BUDGET" =~ ^[0-9]{1,6}$ ]] || { echo "BUDGET_S must be whole seconds (at most 6 digits), got '$BUDGET'" >&2; exit 2; }
BUDGET=$((10#$BUDGET))  # 08 is 8 seconds, not an octal error
case "${MPS:-0}:$PLAN" in 0:* | 1:* | auto:study) ;; auto:*)
  echo "MPS=auto is for the study plan (it measures jobs per GPU with and without MPS first); use MPS=0 or 1" >&2
  exit 2
  ;;
*)
  echo "MPS must be 0, 1 or auto, got '${MPS}'" >&2
  exit 2
  ;;
esac

OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
TEE_PID=$!
# at exit, close the pipe and wait for tee, so the log's last lines are on disk before the machine is given back
trap 'exec >&- 2>&-; wait "$TEE_PID" 2>/dev/null' EXIT
export PYTHONUNBUFFERED=1
START=$(date +%s)
PY=${PYTHON:-python3}

left() { echo $((BUDGET - ($(date +%s) - START))); }
LAST_RC=0
SESSION_RC=0  # 1 when what the session returns could not be written
step() {  # step NAME MIN_SECONDS COMMAND...: run COMMAND within what is left, unless less than MIN_SECONDS is;
  # CAP=N step ...: at most N s of it (the checks: a hung test must not take the session's whole budget)
  local name=$1 need=$2
  shift 2
  local budget limit
  budget=$(left)
  if [ "$budget" -lt "$need" ]; then
    echo "== $name: skipped ($budget s left, needs $need)"
    LAST_RC=skipped
    return 0
  fi
  limit=$budget
  if [ -n "${CAP:-}" ] && [ "$CAP" -lt "$budget" ]; then limit=$CAP; fi
  echo "== $name ($budget s left, limit $limit s): $*"
  local tic=$(date +%s)
  timeout --signal=TERM --kill-after=15 "$limit" "$@"
  local rc=$?
  LAST_RC=$rc
  echo "== $name: exit $rc after $(($(date +%s) - tic)) s"
  return 0
}

# Packages the GPU image lacks (hydra-core, omegaconf, antlr4, submitit, hydra-submitit-launcher).
if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/fmnist-site \
    .whl/*.whl || { echo "wheel install failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/fmnist-site:$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import hydra, omegaconf, submitit" 2>/dev/null || {
  echo "error: $PY lacks hydra-core, omegaconf or submitit: carry .whl/ (make device-kit) in the device call" >&2
  exit 1
}
# The data: built from the carried raw IDX files unless already there.
if [ -d .devdata/raw ]; then export FASHION_MNIST_RAW=$PWD/.devdata/raw; fi
DATA=${DATA:-data/FashionMNIST-Resplit}
[ -f "$DATA/data.parquet" ] || "$PY" -m fmnist.data.prepare --out "$DATA" || exit 1

"$PY" - <<'EOF'
import platform, torch
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"python {platform.python_version()} | torch {torch.__version__} | {gpu}")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# MPS: CUDA's Multi-Process Service, so the kernels of several jobs on the GPU run at once instead of taking
# turns (a batch-128 ResNet9 step fills a fraction of an H200). mps_start starts its daemon, checks it with one
# client (MPS_CHECK, a command; default one CUDA call) and quits it again if that fails; mps_quit ends it (at
# exit too). MPS=1 runs the whole session under it; MPS=auto (study plan) measures 8 jobs per GPU with and
# without it first and keeps it for the study only if it gives >= 10 % more runs per minute.
MPS_ON=0
MPS_CUDA_CHECK="'$PY' -c 'import torch; assert torch.ones(2, device=\"cuda\").sum().item() == 2'"
mps_quit() {
  if [ "$MPS_ON" = 1 ]; then
    echo quit | timeout 20 nvidia-cuda-mps-control >/dev/null 2>&1  # a broken daemon must not hang the session
    echo "== MPS: off"
  fi
  MPS_ON=0
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
}
mps_start() {
  if ! command -v nvidia-cuda-mps-control >/dev/null; then
    echo "== MPS: not started (no nvidia-cuda-mps-control here)"
    return 1
  fi
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/fmnist-mps/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/fmnist-mps/log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d && MPS_ON=1 && timeout 60 bash -c "${MPS_CHECK:-$MPS_CUDA_CHECK}"; then
    echo "== MPS: on"
    return 0
  fi
  echo "== MPS: could not start or serve a client; going on without it"
  tail -5 "$CUDA_MPS_LOG_DIRECTORY"/control.log 2>/dev/null
  mps_quit
  return 1
}
if [ "${MPS:-0}" = 1 ]; then mps_start; fi
trap 'rm -f "${BEFORE:-}"; mps_quit; exec >&- 2>&-; wait "$TEE_PID" 2>/dev/null' EXIT  # BEFORE: the study's manifest

if [ "${TINY:-0}" = 1 ]; then
  BENCH=(--models resnet9 --batch-sizes 64 --width 8 --steps 2 --warmup 1 --workers 0)
  TTA=(--tta-overrides trainer.epochs=1 data.subset=512 model.width=4 ${TTA_OVERRIDES:-})
  CONC=(--concurrency 2 --concurrency-jobs 2 --concurrency-overrides trainer.epochs=1 data.subset=256
    model.width=4 data.val_fraction=0.02)
  STUDY=(trainer.epochs=1 model.width=4 data.subset=256 data.val_fraction=0.02 hydra.launcher.cpu_jobs=2)
  PRESETS=(--presets stage2_skip)
  COMPILE_MODES=(eager)
  COMPILE=(--width 8 --steps 2 --warmup 1)
else
  BENCH=(--steps 100 --warmup 20)
  TTA=()
  [ -n "${TTA_OVERRIDES:-}" ] && TTA=(--tta-overrides ${TTA_OVERRIDES})
  # shellcheck disable=SC2206  # word lists
  CONC=(--concurrency ${CONC_K:-1 4 8} --concurrency-jobs "${CONC_JOBS:-8}")
  [ -n "${CONC_OVERRIDES:-}" ] && CONC+=(--concurrency-overrides ${CONC_OVERRIDES})
  STUDY=()
  # every preset, the cheap ones that answer the report's main questions first (residual vs plain, norm, optimizer,
  # activation, the models), so that a session that ends early leaves whole presets at three seeds
  PRESETS=(--presets stage2_skip stage2_norm stage2_optimizer stage2_activation stage1_models stage3_augment
    stage1_capacity stage3_regularization stage2_lr)
  COMPILE_MODES=(eager graphs compile-default compile-reduce-overhead)
  COMPILE=(--steps 100 --warmup 20)
fi
STUDY_ROOT=${STUDY_ROOT:-.}  # the study's sweeps go to $STUDY_ROOT/multirun/study/<preset>/
BENCH_ARGS=(--data-dir "$DATA")

wants() { [[ " ${BENCH_STEPS:-tests throughput tta compile concurrency} " == *" $1 "* ]]; }
if [ "$PLAN" = check ]; then
  step "gpu tests" 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py
fi
if [ "$PLAN" = bench ]; then
  # the bench leaves the torch.compile tests (a minute or two of compiling) to its own compile-modes step
  wants tests && CAP=${CHECK_CAP:-240} step "gpu tests" 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py \
    -k "not compile_modes"
  wants throughput && step "throughput: naive vs ours" 60 "$PY" -m fmnist.bench "${BENCH_ARGS[@]}" "${BENCH[@]}" \
    --out "$OUT/bench_throughput.json"
  # shellcheck disable=SC2206  # a word list
  [ -n "${TTA_EPOCHS:-}" ] && TTA+=(--tta-epochs ${TTA_EPOCHS})
  # shellcheck disable=SC2086  # TTA_PRESETS and COMPILE_BATCHES are word lists
  wants tta && step "time to accuracy" 60 "$PY" -m fmnist.bench "${BENCH_ARGS[@]}" --models \
    --tta ${TTA_PRESETS:-fast fast95} "${TTA[@]}" --out "$OUT/bench_tta.json"
  # shellcheck disable=SC2086
  wants compile && step "compile modes" 120 "$PY" -m fmnist.bench "${BENCH_ARGS[@]}" "${COMPILE[@]}" --skip-naive \
    --models resnet18 --batch-sizes ${COMPILE_BATCHES:-128 512} --modes "${COMPILE_MODES[@]}" \
    --out "$OUT/bench_compile.json"
  wants concurrency && step "jobs per GPU" 90 "$PY" -m fmnist.bench "${BENCH_ARGS[@]}" --models "${CONC[@]}" \
    --out "$OUT/bench_concurrency.json"
  # the README's performance tables, from whatever was measured
  "$PY" -m fmnist.bench.markdown "$OUT"/bench_*.json >"$OUT/bench.md" && echo "== tables for the README: bench.md"
fi
if [ "$PLAN" = study ]; then
  mkdir -p "$STUDY_ROOT/multirun/study"
  KIT=${STUDY_KIT:-.devstudy}  # the summaries of the committed runs (make study-pack)
  if [ -d "$KIT/multirun/study" ]; then cp -a "$KIT/multirun/study/." "$STUDY_ROOT/multirun/study/"; fi
  # this session's own file: sessions run at once (two CI runs on one machine) must not read each other's
  BEFORE=$(mktemp "${TMPDIR:-/tmp}/fmnist-study-before.XXXXXX") || exit 1
  "$PY" -m fmnist.study_transfer manifest "$STUDY_ROOT" >"$BEFORE" || exit 1
  echo "study: $(grep -c '"multirun' "$BEFORE") run dirs known before this session"
  # The study's numbers must not depend on an unchecked step mode: the CUDA-graph checks first (~1 min); if
  # they fail, the study trains eagerly (cuda_graphs is a neutral key: the same run dirs either way).
  MODE=()
  if [ "${CHECK_GRAPHS:-1}" = 1 ]; then
    CAP=${CHECK_CAP:-240} step "CUDA-graph checks" 60 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py \
      -k "matches_eager or partial_last_batch or replay"
    if [ "$LAST_RC" != 0 ]; then
      echo "== CUDA-graph checks did not pass: the study trains eagerly (trainer.cuda_graphs=false)"
      MODE=(trainer.cuda_graphs=false)
    fi
  fi
  if [ "${MPS:-0}" = auto ]; then  # 8 jobs per GPU of 4 ResNet9 epochs each (TINY: CONC's), without and with MPS
    PROBE=(--models --concurrency 8 --concurrency-jobs 8 --concurrency-overrides model=resnet9 trainer.epochs=4)
    [ "${TINY:-0}" = 1 ] && PROBE=(--models "${CONC[@]}")
    CAP=150 step "jobs per GPU, without MPS" 60 "$PY" -m fmnist.bench "${BENCH_ARGS[@]}" "${PROBE[@]}" \
      --out "$OUT/bench_mps_off.json"
    if mps_start; then
      CAP=150 step "jobs per GPU, with MPS" 60 "$PY" -m fmnist.bench "${BENCH_ARGS[@]}" "${PROBE[@]}" \
        --out "$OUT/bench_mps_on.json"
      if "$PY" - "$OUT/bench_mps_off.json" "$OUT/bench_mps_on.json" <<'EOF'; then
import json, sys
def rate(path):
    try:
        return json.load(open(path))["concurrency"][0]["runs_per_min"] or 0.0
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return 0.0
off, on = rate(sys.argv[1]), rate(sys.argv[2])
print(f"== MPS probe: {off:.2f} runs/min without MPS, {on:.2f} with")
sys.exit(0 if on > 1.1 * off else 1)
EOF
        echo "== MPS: kept for the study"
      else
        mps_quit
      fi
    fi
  fi
  DEADLINE=$((START + BUDGET - ${JOB_MARGIN:-120}))
  END=$((START + BUDGET - 10))  # past the deadline a preset still starts jobs its longest one so far fits before
  # shellcheck disable=SC2206  # a word list
  [ -n "${STUDY_PRESETS:-}" ] && PRESETS=(--presets ${STUDY_PRESETS})
  for seed in ${SEEDS:-all}; do
    SEED=("seed=$seed") LABEL="seed $seed"
    # all: each preset's own grid, seeds 0, 1 and 2 of one preset before the next
    [ "$seed" = all ] && SEED=() LABEL="all seeds"
    # \${name} is Hydra's interpolation: each preset's own name
    step "study, $LABEL" 60 "$PY" -m fmnist.study "${PRESETS[@]}" --concurrent "${CONCURRENT:-3}" -- \
      "${SEED[@]}" hydra/launcher=gpu_pool "hydra.launcher.jobs_per_gpu=${K:-8}" "hydra.launcher.deadline=$DEADLINE" \
      "hydra.launcher.shared_slots=$STUDY_ROOT/multirun/study/.slots" "hydra.launcher.end=$END" \
      "data.dir=$DATA" trainer.checkpoint_every=10 "hydra.sweep.dir=$STUDY_ROOT/multirun/study/\${name}" \
      "${MODE[@]}" "${STUDY[@]}"
  done
  "$PY" -m fmnist.study_transfer archive "$STUDY_ROOT" "$BEFORE" "$OUT/study.tar.gz" || {
    echo "== archive failed: this session's runs are not returned (exit status 1)"
    SESSION_RC=1
  }
  ls -la "$OUT"/study.tar.gz.part-* 2>/dev/null
fi
echo "== done in $(($(date +%s) - START)) s"
exit "$SESSION_RC"
