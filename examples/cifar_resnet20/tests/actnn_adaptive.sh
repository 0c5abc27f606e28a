#!/usr/bin/env bash
# ActNN adaptive bits end to end on Fashion-MNIST: a short L3 run with --ibits 8 --perlayer --usegradient prints
# the bit map with per-layer allocations, the pre-activation ResNet-56 trains a step (L3's defaults are ActNN's:
# adaptive, per-layer), and --measure-var gives
# Var = 0 and Bias = 0 with nothing compressed (L0) but Var > 0 at L3. Exits 77 (skipped) without the data.
set -euo pipefail
exe="$1"
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/fashion_mnist.sh" "${2:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
common=(--dataset fashion-mnist --data "$data" --augment none --batch-size 32 --threads 1 --workers 1 --seed 0)

"$exe" "${common[@]}" --epochs 1 --max-steps 3 --actnn-level L3 --ibits 8 --perlayer --usegradient \
  --save "$tmp/run" >"$tmp/train.log"
grep -q "actnn adaptive bits: per-sample from ibits 8, per-layer" "$tmp/train.log" || { echo "FAIL: no adaptive bits"; cat "$tmp/train.log"; exit 1; }
grep -q "per-layer allocations so far" "$tmp/train.log" || { echo "FAIL: no bit map"; cat "$tmp/train.log"; exit 1; }
allocs=$(grep -o "([0-9]* per-layer allocations" "$tmp/train.log" | grep -o "[0-9]*")
[[ "$allocs" -ge 3 ]] || { echo "FAIL: expected >= 3 per-layer allocations, got $allocs"; exit 1; }
echo "ok   L3 adaptive run: $allocs per-layer allocations"

# 855,578 for 3 input channels; Fashion-MNIST has 1, so conv1 has 2 x 144 fewer weights
"$exe" "${common[@]}" --arch preact_resnet56 --epochs 1 --max-steps 1 --actnn-level L3 >"$tmp/preact.log"
grep -q "855290 parameters" "$tmp/preact.log" || { echo "FAIL: preact_resnet56"; cat "$tmp/preact.log"; exit 1; }
echo "ok   preact_resnet56 trains a step"
# L3's defaults are ActNN's (ibits 8 and the per-layer reallocation); --perlayer=false keeps per-sample bits only
grep -q "actnn adaptive bits: per-sample from ibits 8, per-layer" "$tmp/preact.log" || { echo "FAIL: L3 defaults"; cat "$tmp/preact.log"; exit 1; }
"$exe" "${common[@]}" --epochs 1 --max-steps 1 --actnn-level L3 --perlayer=false >"$tmp/sample.log"
grep -q "actnn adaptive bits: per-sample from ibits 8$" "$tmp/sample.log" || { echo "FAIL: --perlayer=false"; cat "$tmp/sample.log"; exit 1; }
echo "ok   L3 defaults: ibits 8, per-layer (ActNN's); --perlayer=false turns the reallocation off"

overall() {  # overall LEVEL FLAGS... -> the "Overall ..." line
  "$exe" "${common[@]}" --measure-var "$tmp/run/last.safetensors" --var-batches 2 "$@" | grep "^Overall"
}
l0=$(overall --actnn-level L0)
l3=$(overall --actnn-level L3 --ibits 8 --perlayer)
echo "L0: $l0"
echo "L3: $l3"
[[ "$l0" == "Overall Bias = 0, Var = 0, "* ]] || { echo "FAIL: L0 must give Bias = Var = 0"; exit 1; }
var3=$(sed 's/.*Var = \([^,]*\),.*/\1/' <<<"$l3")
awk -v v="$var3" 'BEGIN { exit !(v > 0) }' || { echo "FAIL: L3 Var must be > 0"; exit 1; }
echo "ok   --measure-var"
