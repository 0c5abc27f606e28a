#!/usr/bin/env bash
# --profile prints where the time went at exit: every op's forward and backward, summed over the run. Without
# the flag there is no table.
#   profile.sh CIFAR_RESNET20 [FASHION_MNIST_DIR]
set -uo pipefail
exe="$1"
source "$(dirname "${BASH_SOURCE[0]}")/fashion_mnist.sh" "${2:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
run=(--dataset fashion-mnist --data "$data" --augment none --epochs 1 --max-steps 2 --batch-size 16 --threads 1
  --workers 1 --print-freq 1000)
"$exe" "${run[@]}" --profile >"$tmp/on.log" 2>&1 || { echo "FAIL: run with --profile"; tail -5 "$tmp/on.log"; exit 1; }
for pattern in '^=> per-op time' '^conv2d +forward +[0-9]+ ' '^conv2d +backward +[0-9]+ ' \
  '^batch_norm_relu +backward ' '^total +[0-9.]+$'; do
  grep -qE -- "$pattern" "$tmp/on.log" || { echo "FAIL: no line matching '$pattern'"; tail -25 "$tmp/on.log"; exit 1; }
done
"$exe" "${run[@]}" >"$tmp/off.log" 2>&1 || { echo "FAIL: run without --profile"; tail -5 "$tmp/off.log"; exit 1; }
if grep -q 'per-op time' "$tmp/off.log"; then echo "FAIL: a table without --profile"; exit 1; fi
echo "ok: --profile table ($(grep -cE '^[a-z_0-9]+ +(forward|backward) ' "$tmp/on.log") op rows), none without it;" \
  "$(grep -E '^conv2d +backward' "$tmp/on.log")"
