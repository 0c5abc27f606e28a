#!/usr/bin/env bash
# Kill a training run with SIGKILL after its first checkpoint, resume it with --resume, and check that the
# metrics continue from the checkpoint (each epoch exactly once) and no half-written checkpoint is left.
set -uo pipefail
exe="$1"
source "$(dirname "${BASH_SOURCE[0]}")/fashion_mnist.sh" "${2:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
args=(--dataset fashion-mnist --data "$data" --augment none --epochs 4 --max-steps 6 --batch-size 32
      --threads 1 --workers 1 --print-freq 2 --save "$tmp/run")

"$exe" "${args[@]}" >"$tmp/first.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [[ -e "$tmp/run/last.safetensors" ]] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.2
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if [[ ! -e "$tmp/run/last.safetensors" ]]; then
  echo "FAIL: no checkpoint was written"; cat "$tmp/first.log"; exit 1
fi
echo "killed the first run after: $(grep -c '^=> epoch' "$tmp/first.log") finished epoch(s)"
# what a kill during a checkpoint write leaves (the kill above lands there only sometimes): resume removes it
echo partial >"$tmp/run/last.safetensors.tmp.424242"

"$exe" --resume "$tmp/run" --threads 1 --workers 1 >"$tmp/second.log" 2>&1 || { echo "FAIL: resume failed"; cat "$tmp/second.log"; exit 1; }
grep -q "removed last.safetensors.tmp.424242" "$tmp/second.log" || { echo "FAIL: stale temp file not removed"; cat "$tmp/second.log"; exit 1; }
grep "resumed from" "$tmp/second.log" || { echo "FAIL: no resume line"; cat "$tmp/second.log"; exit 1; }
start=$(sed -n 's/.*resumed from .* at epoch \([0-9]*\).*/\1/p' "$tmp/second.log")
if [[ -z "$start" || "$start" -lt 1 ]]; then echo "FAIL: resumed at epoch '$start'"; exit 1; fi
if grep -q "^=> epoch 0:" "$tmp/second.log"; then echo "FAIL: the resumed run trained epoch 0 again"; exit 1; fi
epochs=$(tail -n +2 "$tmp/run/metrics.csv" | cut -d, -f1 | tr '\n' ' ')
if [[ "$epochs" != "0 1 2 3 " ]]; then
  echo "FAIL: metrics.csv epochs are '$epochs', expected '0 1 2 3 '"; cat "$tmp/run/metrics.csv"; exit 1
fi
if ls "$tmp/run" | grep -q tmp; then echo "FAIL: temporary files left: $(ls "$tmp/run")"; exit 1; fi
echo "ok: resumed at epoch $start; metrics.csv has epochs $epochs"
