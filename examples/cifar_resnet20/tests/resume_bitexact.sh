#!/usr/bin/env bash
# Mid-epoch resume is bit-exact: a 1-thread run checkpointing every 3 steps (--save-every 3) is SIGKILLed twice
# mid-epoch (after a mid-epoch checkpoint) and resumed each time, with a different number of loader workers; its
# final checkpoints must equal, tensor by tensor and bit for bit, those of an uninterrupted run with the same
# seed. Augmentation (crop-flip) is on, so the per-sample augmentation keys are exercised. Also compares the
# losses of every resumed step and the deterministic columns of metrics.csv (each epoch exactly once).
# Usage: resume_bitexact.sh CIFAR_RESNET20 COMPARE_CHECKPOINTS [FASHION_MNIST_DIR]; exits 77 (skipped) without data.
set -uo pipefail
exe="$1"
compare="$2"
source "$(dirname "${BASH_SOURCE[0]}")/fashion_mnist.sh" "${3:-}"
tmp="$(mktemp -d)"
pid=""
trap '[[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 2 epochs x 8 steps: mid-epoch checkpoints at global steps 3, 6 | 9, 12, 15 (epoch 1, steps 1, 4, 7).
args=(--dataset fashion-mnist --data "$data" --augment crop-flip --epochs 2 --max-steps 8 --batch-size 32
      --threads 1 --workers 2 --seed 11 --print-freq 1 --save-every 3)

start=$SECONDS
"$exe" "${args[@]}" --save "$tmp/a" --loss-log "$tmp/a.loss" >"$tmp/a.log" 2>&1 ||
  { cat "$tmp/a.log"; fail "the uninterrupted run failed"; }

# run_until_saved LOG PATTERN ARGS...: starts a run, waits until LOG shows PATTERN (a mid-epoch save), kills it.
# The checkpoint's rename is slowed (test-only delay) so the run is still inside its epoch when the kill lands.
run_until_saved() {
  local log="$1" pattern="$2"
  shift 2
  MINIDL_TEST_CHECKPOINT_RENAME_DELAY_MS=400 "$exe" "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    grep -q -- "$pattern" "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
  grep -q -- "$pattern" "$log" || { cat "$log"; fail "never saw '$pattern' before the run ended"; }
}

run_until_saved "$tmp/b1.log" "at epoch 0, step 3" "${args[@]}" --save "$tmp/b" --loss-log "$tmp/b1.loss"
run_until_saved "$tmp/b2.log" "at epoch 1, step 1" --resume "$tmp/b" --threads 1 --workers 1 --loss-log "$tmp/b2.loss"
"$exe" --resume "$tmp/b" --threads 1 --workers 3 --loss-log "$tmp/b3.loss" >"$tmp/b3.log" 2>&1 ||
  { cat "$tmp/b3.log"; fail "the last resumed run failed"; }

for i in 2 3; do
  line=$(grep "resumed from" "$tmp/b$i.log") || fail "run b$i did not resume"
  echo "run b$i: ${line#=> }"
  [[ "$line" =~ at\ epoch\ ([0-9]+),\ step\ ([0-9]+) ]] || fail "no position in '$line'"
  [[ ${BASH_REMATCH[2]} -gt 0 ]] || fail "run b$i resumed at an epoch start, not mid-epoch: '$line'"
  # every step the resumed run trained has the loss of the same step in the uninterrupted run, bit for bit
  extra=$(grep -Fxv -f "$tmp/a.loss" "$tmp/b$i.loss")
  [[ -z "$extra" ]] || fail "run b$i has losses the uninterrupted run does not have (epoch step loss): $extra"
done
cmp -s <(tail -1 "$tmp/a.loss") <(tail -1 "$tmp/b3.loss") || fail "the last step's loss differs"

epochs=$(tail -n +2 "$tmp/b/metrics.csv" | cut -d, -f1 | tr '\n' ' ')
[[ "$epochs" == "0 1 " ]] || { cat "$tmp/b/metrics.csv"; fail "metrics.csv epochs are '$epochs', expected '0 1 '"; }
# epoch, lr, train loss/acc (restored running sums), test loss/acc; seconds and img/s are wall-clock
cmp -s <(cut -d, -f1-6 "$tmp/a/metrics.csv") <(cut -d, -f1-6 "$tmp/b/metrics.csv") ||
  { diff <(cut -d, -f1-6 "$tmp/a/metrics.csv") <(cut -d, -f1-6 "$tmp/b/metrics.csv"); fail "metrics.csv differs"; }

for f in last best; do
  out=$("$compare" "$tmp/a/$f.safetensors" "$tmp/b/$f.safetensors") || fail "$f.safetensors: $out"
  echo "$f.safetensors: $out"
done
echo "ok: killed mid-epoch twice, resumed, final checkpoints bit-identical ($((SECONDS - start)) s)"
