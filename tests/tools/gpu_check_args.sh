#!/usr/bin/env bash
# scripts/gpu-check without a GPU: --dry-run prints all six steps with their commands, bad arguments exit 2
# with a clear message, and a real run on a machine without a GPU exits 77 (skipped) before building anything.
set -u
script="$1"
fail() { echo "FAIL: $*"; exit 1; }
fm=/usr/share/datasets/fashion-mnist
skip_train=()
[[ -f $fm/train-images-idx3-ubyte.gz ]] || skip_train=(--skip train)

out="$("$script" --dry-run "${skip_train[@]}" 2>&1)" || fail "--dry-run exited $?: $out"
for step in "1 build:" "2 conform:" "3 device:" "4 memcheck:" "5 train:" "6 bench:" "compute-sanitizer --tool memcheck" \
            "minidl_test_cuda" "-tc='*nccl*'" \
            "--device cuda" "--tf32" "--batch18 64" "budget: 480 s"; do
  [[ "$out" == *"$step"* ]] || fail "--dry-run output lacks '$step': $out"
done

"$script" --skip nonsense >/dev/null 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "--skip nonsense exited $rc, expected 2"
msg="$("$script" --fashion-mnist /nonexistent --dry-run 2>&1)"; rc=$?
[[ $rc -eq 2 && "$msg" == *"/nonexistent/train-images-idx3-ubyte.gz is missing"* ]] || fail "missing data: rc $rc: $msg"
"$script" --jobs 0 --dry-run >/dev/null 2>&1; rc=$?
[[ $rc -eq 2 ]] || fail "--jobs 0 exited $rc, expected 2"
# --deps: a staged directory shows in the plan (as MINIDL_DEPS_DIR); one without include/ is refused.
deps="$(mktemp -d)"
trap 'rm -rf "$deps"' EXIT
mkdir -p "$deps/include"
out="$("$script" --dry-run --deps "$deps" "${skip_train[@]}" 2>&1)" || fail "--dry-run --deps exited $?: $out"
[[ "$out" == *"header-only deps: $deps"* && "$out" == *"-DMINIDL_DEPS_DIR=$deps"* ]] || fail "--deps not in the plan: $out"
msg="$("$script" --deps /nonexistent --dry-run "${skip_train[@]}" 2>&1)"; rc=$?
[[ $rc -eq 2 && "$msg" == *"stage-gpu-deps"* ]] || fail "--deps /nonexistent: rc $rc: $msg"

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "a GPU is present: the no-GPU skip is not checked here (scripts/gpu-check is the GPU run itself)"
else
  "$script" "${skip_train[@]}" >/dev/null 2>&1; rc=$?
  [[ $rc -eq 77 ]] || fail "without a GPU gpu-check exited $rc, expected 77 (skipped)"
fi
echo "gpu-check argument checks: OK"
