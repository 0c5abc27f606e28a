#!/usr/bin/env bash
# Kill anywhere, lose nothing: SIGKILL a training run at KILLS (default 20) random moments, cycling through
# startup, mid-step, inside a checkpoint write (a test-only delay between the write and the rename holds the
# temporary file open for the kill) and the epoch boundary. After each kill: the directory holds only the
# checkpoint files, metrics.csv and temporary files of an interrupted write; the newest checkpoint loads
# (--evaluate); the next run resumes exactly at the position recorded in it (or starts afresh when none exists)
# and removes the temporary files. At the end the run completes, metrics.csv holds each epoch exactly once, and
# the final checkpoint is bit-identical to that of an uninterrupted run with the same seed: nothing was lost.
# Random moments come from a seed (printed; KILL_SEED=S reruns the same schedule).
# Usage: kill_anywhere.sh CIFAR_RESNET20 COMPARE_CHECKPOINTS [FASHION_MNIST_DIR]; exits 77 (skipped) without
# the data.
set -uo pipefail
exe="$1"
compare="$2"
source "$(dirname "${BASH_SOURCE[0]}")/fashion_mnist.sh" "${3:-}"
command -v python3 >/dev/null || { echo "skip: python3 (to read checkpoint metadata) not found"; exit 77; }
kills="${KILLS:-20}"
seed="${KILL_SEED:-$(( $(date +%s) % 100000 ))}"
RANDOM=$seed
echo "kill_anywhere: seed $seed, $kills kills (rerun with KILL_SEED=$seed)"
tmp="$(mktemp -d)"
pid=""
trap '[[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
dir="$tmp/run"
epochs=12
train=(--dataset fashion-mnist --data "$data" --augment crop-flip --epochs "$epochs" --max-steps 8 --batch-size 16
       --threads 1 --workers 2 --seed 5 --print-freq 1 --save-every 2)
args=("${train[@]}" --save "$dir")
export MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS=150  # test-only: hold every checkpoint between write and rename

# "E S" = next_epoch next_step in a checkpoint's safetensors metadata.
position() {
  python3 - "$1" <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    m = json.loads(f.read(n))["__metadata__"]
print(m["next_epoch"], m.get("next_step", "0"))
PY
}

# The checkpoint loads into the model and evaluates (one test batch).
loads() {
  "$exe" --evaluate "$1" --max-steps 1 --threads 1 --workers 1 >"$tmp/eval.log" 2>&1 || { cat "$tmp/eval.log"; false; }
}

# Starts the next run: a resume when a checkpoint exists, else a fresh start. Sets pid, log, expect.
run=0
start_run() {
  run=$((run + 1))
  log="$tmp/run$run.log"
  if [[ -e "$dir/last.safetensors" ]]; then
    expect=$(position "$dir/last.safetensors") || fail "cannot read the metadata of last.safetensors"
    "$exe" --resume "$dir" --threads 1 --workers 2 >"$log" 2>&1 &
  else
    expect="fresh"
    "$exe" "${args[@]}" >"$log" 2>&1 &
  fi
  pid=$!
}

# wait_for CMD...: polls CMD every 10 ms while the run lives; returns 1 if the run ended first.
wait_for() {
  for _ in $(seq 1 6000); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.01
  done
  return 1
}
in_log() { grep -q -- "$1" "$log"; }
in_log_times() { [[ $(grep -c -- "$1" "$log") -ge $2 ]]; }  # PATTERN N: at least N matching lines
# a checkpoint temp file of the current run (save_safetensors names it <file>.tmp.<pid>)
temp_exists() { compgen -G "$dir/*.safetensors.tmp.$pid" >/dev/null; }
msleep() { sleep "$(printf '0.%03d' "$1")"; }

# The run after a kill must resume at the newest checkpoint's position; a run killed before it printed its
# resume line leaves that check to the next one (it cannot have written anything).
pending=0  # kills whose resume is not confirmed yet
recovered=0
check_resume_line() {
  if [[ "$expect" == "fresh" ]]; then
    in_log "=> cifar_resnet20:" || return 1
    in_log "resumed from" && fail "run $run resumed although no checkpoint existed"
  else
    local line
    line=$(grep "resumed from" "$log") || return 1
    [[ "$line" == *"at epoch ${expect% *}, step ${expect#* } "* ]] ||
      fail "run $run: '$line', but the newest checkpoint is at epoch/step '$expect'"
  fi
  recovered=$((recovered + pending))
  pending=0
  return 0
}

declare -A by_kind
start=$SECONDS
for ((k = 1; k <= kills; k++)); do
  start_run
  kinds=(startup mid-step in-write epoch-end)
  kind=${kinds[$((k % 4))]}
  case $kind in
    startup) msleep $((RANDOM % 900)) ;;  # loading data, building the model, reading the checkpoint
    # after 1-5 steps of this run, somewhere inside the next one
    mid-step) wait_for in_log_times "^Epoch: \[" $((1 + RANDOM % 5)) && msleep $((RANDOM % 60)) ;;
    # inside the 1st-3rd mid-epoch checkpoint write of this run, before its rename (the delay is 150 ms)
    in-write) wait_for in_log_times "^=> saved" $((RANDOM % 3)) && wait_for temp_exists && msleep $((RANDOM % 100)) ;;
    # after an epoch's evaluation: writing its metrics row, best or last (150 ms each), or just after
    epoch-end) wait_for in_log "^=> epoch [0-9]*:" && msleep $((RANDOM % 500)) ;;
  esac
  kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "kill $k ($kind): the run ended before the kill"; }
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  [[ $kind == in-write ]] && ! temp_exists && kind="in-write(missed)"
  pid=""
  by_kind[$kind]=$((${by_kind[$kind]:-0} + 1))
  check_resume_line || true
  # Only checkpoints, metrics.csv and temporary files of an interrupted save may be there.
  for f in "$dir"/*; do
    [[ -e "$f" ]] || continue
    case "$(basename "$f")" in
      last.safetensors | best.safetensors | metrics.csv | *.safetensors.tmp.* | metrics.csv.tmp) ;;
      *) fail "kill $k: unexpected file $(basename "$f")" ;;
    esac
  done
  newest="none"
  if [[ -e "$dir/last.safetensors" ]]; then
    loads "$dir/last.safetensors" || fail "kill $k ($kind): last.safetensors does not load"
    newest="epoch/step $(position "$dir/last.safetensors")"
  fi
  echo "kill $k/$kills ($kind) in run $run after $(grep -c '^Epoch: \[' "$log") steps: newest checkpoint $newest," \
    "temp files: $(cd "$dir" && ls | grep -c tmp)"
  pending=$((pending + 1))
done

# The last run completes undisturbed.
start_run
wait "$pid"
rc=$?
pid=""
[[ $rc -eq 0 ]] || { cat "$log"; fail "the final run exited with $rc"; }
check_resume_line || { cat "$log"; fail "the final run did not resume"; }
grep -q "removed .*tmp" "$tmp"/run*.log || echo "note: no run found a temporary file to remove"
if ls "$dir" | grep -q tmp; then fail "temporary files left: $(ls "$dir")"; fi
want=$(seq -s ' ' 0 $((epochs - 1)))
got=$(tail -n +2 "$dir/metrics.csv" | cut -d, -f1 | tr '\n' ' ')
[[ "$got" == "$want " ]] || { cat "$dir/metrics.csv"; fail "metrics.csv epochs are '$got', expected '$want '"; }
[[ "$(position "$dir/last.safetensors")" == "$epochs 0" ]] || fail "last.safetensors is not at the end of training"
loads "$dir/best.safetensors" || fail "best.safetensors does not load"
# The same training without kills (and without the test delay) ends in the same tensors, bit for bit.
MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS= "$exe" "${train[@]}" --save "$tmp/ref" >"$tmp/ref.log" 2>&1 ||
  { cat "$tmp/ref.log"; fail "the uninterrupted reference run failed"; }
out=$("$compare" "$tmp/ref/last.safetensors" "$dir/last.safetensors") || fail "vs. an uninterrupted run: $out"
echo "final checkpoint vs. an uninterrupted run: $out"
summary=""
for kd in "${!by_kind[@]}"; do summary+=" $kd=${by_kind[$kd]}"; done
echo "kills by moment:$summary; $run runs, $((SECONDS - start)) s"
echo "$recovered/$kills kills recovered"
[[ $recovered -eq $kills ]] || fail "only $recovered of $kills kills recovered"
