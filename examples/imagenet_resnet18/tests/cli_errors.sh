#!/usr/bin/env bash
# imagenet_resnet18 on bad input: each case must fail with exit 2 and a one-line error naming the problem, and
# --skip-bad-images must turn a bad file into a warning with a count. Trees come from minidl_make_test_tree.
#   cli_errors.sh IMAGENET_RESNET18 MAKE_TEST_TREE
set -uo pipefail
prog=$1 make_tree=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
common=(--image-size 16 -b 4 --epochs 1 --max-steps 1 -j 1 --threads 1 -p 1000)

expect_error() {  # expect_error "what" "pattern" args...
  local what=$1 pattern=$2
  shift 2
  local out rc
  out=$("$prog" "$@" 2>&1)
  rc=$?
  if [[ $rc -ne 2 ]] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: $what: exit $rc, expected 2 and '$pattern'; output:"
    tail -5 <<<"$out"
    fail=1
  else
    echo "ok: $what: $(grep -m1 -- "$pattern" <<<"$out")"
  fi
}

for kind in corrupt truncated non-image empty-class no-images; do
  "$make_tree" "$tmp/$kind" --bad "$kind" || { echo "FAIL: cannot make the $kind tree"; exit 1; }
done
expect_error "no dataset" "no dataset" "${common[@]}"
expect_error "missing root" "$tmp/missing/val" "$tmp/missing" "${common[@]}"
expect_error "bad --bit" "bit" "$tmp/corrupt" --bit 7 "${common[@]}"
expect_error "evaluate without a model" "needs the model" "$tmp/corrupt" -e
expect_error "empty class folder" "zz_empty' holds no" "$tmp/empty-class" "${common[@]}"
expect_error "tree with no images" "no .jpg/.jpeg/.png images found" "$tmp/no-images" "${common[@]}"
# Validation reads val/class0/zz_* (sorted last in class0); --max-steps 0 keeps every validation batch.
for kind in corrupt truncated non-image; do
  expect_error "$kind image" "zz_" "$tmp/$kind" --image-size 16 -b 4 --epochs 1 -j 1 --threads 1 -p 1000 --max-steps 1000
  out=$("$prog" "$tmp/$kind" --image-size 16 -b 4 --epochs 1 -j 1 --threads 1 -p 1000 --skip-bad-images 2>&1)
  rc=$?
  if [[ $rc -ne 0 ]] || ! grep -q "warning: skipping bad image (1 so far).*zz_" <<<"$out" ||
     ! grep -q "1 bad images skipped" <<<"$out"; then
    echo "FAIL: $kind image with --skip-bad-images: exit $rc"; tail -5 <<<"$out"; fail=1
  else
    echo "ok: $kind image with --skip-bad-images: $(grep -m1 'bad images skipped' <<<"$out" | sed 's/.*| //')"
  fi
done
exit $fail
