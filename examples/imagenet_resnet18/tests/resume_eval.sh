#!/usr/bin/env bash
# imagenet_resnet18 on a generated tree: (1) a run stopped after epoch 1 and resumed to epoch 2 ends exactly
# like an uninterrupted 2-epoch run (same losses and accuracies); (2) -e gives the same top-1 on the ref and
# cpu backends, and -e honours --val-resize; (3) a 4-bit APoT model initialised from the float checkpoint trains and prints show_params.
#   resume_eval.sh IMAGENET_RESNET18 MAKE_TEST_TREE
set -uo pipefail
prog=$1 make_tree=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
"$make_tree" "$tmp/tree" --classes 3 --train 12 --val 6 || exit 1
common=(--image-size 32 -b 8 --lr 0.01 --schedule 30 -j 2 --threads 1 -p 1000 --seed 3)
summary() { grep -E '^=> epoch|^ \* Acc' "$1"; }

"$prog" "$tmp/tree" "${common[@]}" --epochs 2 --save-dir "$tmp/straight" >"$tmp/straight.log" 2>&1 ||
  { echo "FAIL: straight run"; tail -5 "$tmp/straight.log"; exit 1; }
"$prog" "$tmp/tree" "${common[@]}" --epochs 1 --save-dir "$tmp/split" >"$tmp/first.log" 2>&1 ||
  { echo "FAIL: first half"; tail -5 "$tmp/first.log"; exit 1; }
"$prog" --resume "$tmp/split" --epochs 2 -j 2 --threads 1 >"$tmp/second.log" 2>&1 ||
  { echo "FAIL: resume"; tail -5 "$tmp/second.log"; exit 1; }
grep -q "resumed from .* at epoch 1" "$tmp/second.log" || { echo "FAIL: no resume line"; fail=1; }
# Epoch lines carry timings: compare everything but them.
strip() { sed -E 's/\| [0-9.]+ s, [0-9.]+ img\/s, data wait [0-9.]+ s//'; }
if diff <(summary "$tmp/straight.log" | strip) <(cat "$tmp/first.log" "$tmp/second.log" | summary /dev/stdin | strip); then
  echo "ok: resumed run == straight run: $(summary "$tmp/straight.log" | tail -1)"
else
  echo "FAIL: resumed run differs from the straight run"; fail=1
fi

for b in ref cpu; do
  MINIDL_BACKEND=$b "$prog" "$tmp/tree" -e --resume "$tmp/straight/last.safetensors" -b 8 -j 1 --threads 1 \
    >"$tmp/eval_$b.log" 2>&1 || { echo "FAIL: evaluate on $b"; tail -5 "$tmp/eval_$b.log"; fail=1; }
done
top1() { grep '^ \* Acc@1' "$1" | awk '{print $3}'; }
# The mean validation loss (last "Test:" line) to 3 significant digits: the backends agree beyond argmaxes.
vloss() { grep '^Test:' "$1" | tail -1 | sed -E 's/.*Loss [^(]*\(([^)]*)\).*/\1/' | awk '{printf "%.3g", $1}'; }
if [[ -n "$(top1 "$tmp/eval_ref.log")" && "$(top1 "$tmp/eval_ref.log")" == "$(top1 "$tmp/eval_cpu.log")" &&
      "$(vloss "$tmp/eval_ref.log")" == "$(vloss "$tmp/eval_cpu.log")" ]]; then
  echo "ok: evaluate: ref Acc@1 $(top1 "$tmp/eval_ref.log") loss $(vloss "$tmp/eval_ref.log") == cpu Acc@1" \
    "$(top1 "$tmp/eval_cpu.log") loss $(vloss "$tmp/eval_cpu.log")"
else
  echo "FAIL: evaluate: ref '$(top1 "$tmp/eval_ref.log")' ($(vloss "$tmp/eval_ref.log")) vs cpu" \
    "'$(top1 "$tmp/eval_cpu.log")' ($(vloss "$tmp/eval_cpu.log"))"; fail=1
fi

# The validation transform is an evaluation choice: -e --val-resize overrides the checkpoint's (Resize(37) here).
"$prog" "$tmp/tree" -e --resume "$tmp/straight/last.safetensors" --val-resize 32 -b 8 -j 1 --threads 1 \
  >"$tmp/eval_vr.log" 2>&1 || { echo "FAIL: evaluate with --val-resize"; tail -5 "$tmp/eval_vr.log"; fail=1; }
if grep -q 'Resize(32), CenterCrop(32x32)' "$tmp/eval_vr.log" && grep -q 'Resize(37), CenterCrop(32x32)' "$tmp/eval_cpu.log"; then
  echo "ok: -e --val-resize 32 evaluates with Resize(32) (the checkpoint's default: Resize(37))"
else
  echo "FAIL: -e --val-resize 32 not honoured: $(head -1 "$tmp/eval_vr.log")"; fail=1
fi

"$prog" "$tmp/tree" --image-size 32 -b 8 --lr 0.01 -j 2 --threads 1 -p 1000 --epochs 1 --max-steps 2 --bit 4 \
  --pretrained "$tmp/straight/best.safetensors" --save-dir "$tmp/q4" --profile >"$tmp/q4.log" 2>&1 ||
  { echo "FAIL: 4-bit run"; tail -5 "$tmp/q4.log"; fail=1; }
if grep -q "loaded pretrained weights" "$tmp/q4.log" && [[ $(grep -c "^weight alpha: .*, act alpha: " "$tmp/q4.log") -ge 19 ]] && grep -q '^=> epoch 0' "$tmp/q4.log"; then
  echo "ok: 4-bit APoT from the float checkpoint trains; show_params: $(grep -c "^weight alpha" "$tmp/q4.log") lines, first: $(grep -m1 "^weight alpha" "$tmp/q4.log")"
else
  echo "FAIL: 4-bit APoT run"; tail -5 "$tmp/q4.log"; fail=1
fi
# --profile (on the 4-bit run): the per-op table at exit, both phases of the convolutions
if grep -q '^=> per-op time' "$tmp/q4.log" && grep -qE '^conv2d +forward +[0-9]+ ' "$tmp/q4.log" &&
  grep -qE '^conv2d +backward +[0-9]+ ' "$tmp/q4.log" && grep -qE '^total +[0-9.]+$' "$tmp/q4.log"; then
  echo "ok: --profile prints the per-op table: $(grep -E '^conv2d +backward' "$tmp/q4.log")"
else
  echo "FAIL: --profile table missing"; tail -20 "$tmp/q4.log"; fail=1
fi
exit $fail
