#!/usr/bin/env bash
# Two runs with the same seed and thread count give bit-identical losses for the first 20 steps.
set -uo pipefail
exe="$1"
source "$(dirname "${BASH_SOURCE[0]}")/fashion_mnist.sh" "${2:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for run in a b; do
  "$exe" --dataset fashion-mnist --data "$data" --epochs 1 --max-steps 20 --batch-size 64 --threads 2 \
    --workers 2 --seed 7 --print-freq 10 --loss-log "$tmp/$run.txt" >"$tmp/$run.log" 2>&1 ||
    { echo "FAIL: run $run"; cat "$tmp/$run.log"; exit 1; }
done
[[ $(wc -l <"$tmp/a.txt") -eq 20 ]] || { echo "FAIL: expected 20 logged steps"; cat "$tmp/a.txt"; exit 1; }
if ! cmp -s "$tmp/a.txt" "$tmp/b.txt"; then
  echo "FAIL: losses differ"; diff "$tmp/a.txt" "$tmp/b.txt"; exit 1
fi
echo "ok: 20 identical losses, first $(head -1 "$tmp/a.txt"), last $(tail -1 "$tmp/a.txt")"
