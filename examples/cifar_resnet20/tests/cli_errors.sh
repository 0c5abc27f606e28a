#!/usr/bin/env bash
# Bad input to cifar_resnet20 gives a one-line error naming the problem, a non-zero exit code and no crash:
# a truncated CIFAR file, an IDX file with a wrong magic number, a missing data directory, an unknown flag.
set -uo pipefail
exe="$1"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0

expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"
  shift 2
  "$exe" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local lines
  lines=$(wc -l <"$tmp/err")
  if [[ $rc -eq 0 || $rc -ge 128 ]]; then
    echo "FAIL $name: exit code $rc (expected a plain non-zero exit, no signal)"; fail=1
  elif [[ $lines -ne 1 ]]; then
    echo "FAIL $name: expected a one-line error, got $lines lines:"; cat "$tmp/err"; fail=1
  elif ! grep -q -- "$pattern" "$tmp/err"; then
    echo "FAIL $name: error does not mention '$pattern':"; cat "$tmp/err"; fail=1
  else
    echo "ok   $name: $(cat "$tmp/err")"
  fi
}

# A CIFAR-10 directory whose first training file is cut mid-record.
mkdir -p "$tmp/cifar"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  head -c $((3073 * 2)) /dev/zero >"$tmp/cifar/$f.bin"
done
head -c 5000 /dev/zero >"$tmp/cifar/data_batch_1.bin"
expect_error "truncated CIFAR file" "data_batch_1.bin" --dataset cifar10 --data "$tmp/cifar" --epochs 1

# Fashion-MNIST files whose image file has the label magic number.
mkdir -p "$tmp/idx"
for split in train t10k; do
  printf '\x00\x00\x08\x01\x00\x00\x00\x02\x00\x00' >"$tmp/idx/$split-images-idx3-ubyte"
  printf '\x00\x00\x08\x01\x00\x00\x00\x02\x00\x00' >"$tmp/idx/$split-labels-idx1-ubyte"
done
expect_error "IDX wrong magic" "magic" --dataset fashion-mnist --data "$tmp/idx" --epochs 1

expect_error "missing data directory" "$tmp/nope" --dataset cifar10 --data "$tmp/nope" --epochs 1
expect_error "unknown flag" "--bogus" --bogus 3
expect_error "bad scheme" "scheme" --scheme nonsense --bit 4 --data "$tmp/cifar"
expect_error "quantized preact_resnet56" "float network" --arch preact_resnet56 --scheme apot --bit 4 --data "$tmp/cifar"
expect_error "APoT --bit 1" "bit width 1" --scheme apot --bit 1 --data "$tmp/cifar"
expect_error "--bit 9" "bit width 9" --bit 9 --data "$tmp/cifar"
expect_error "--save-every without --save" "--save-every needs --save" --save-every 5 --data "$tmp/cifar"
expect_error "--export without a checkpoint" "--export needs a checkpoint" --export onnx "$tmp/m.onnx"
expect_error "--export unknown format" "unknown format 'tflite'" --export tflite "$tmp/m.onnx" -e "$tmp/none"
expect_error "--export-samples without --export" "--export-samples needs --export" --export-samples 5
expect_error "--export of a missing checkpoint" "$tmp/none" --export onnx "$tmp/m.onnx" -e "$tmp/none"
expect_error "negative --save-every" "--save-every must be >= 0" --save-every -1 --save "$tmp/run" --data "$tmp/cifar"
# The allocator's memory cap: exhaustion and a malformed limit are one-line errors, not a crash or an abort.
MINIDL_MEMORY_LIMIT=64K expect_error "memory limit exhausted" "exceed the memory limit of 65536 bytes" \
  --data "$tmp/cifar" --epochs 1
MINIDL_MEMORY_LIMIT=lots expect_error "malformed MINIDL_MEMORY_LIMIT" "MINIDL_MEMORY_LIMIT: 'lots'" \
  --data "$tmp/cifar" --epochs 1
apot="${MINIDL_SHARED_DIR:-$(dirname "$0")/../../../../shared}/data/apot"
if [[ -e "$apot/apot_res20_4bit.safetensors" ]]; then
  expect_error "checkpoint of another architecture" "does not match this model" --arch resnet32 \
    --evaluate "$apot/apot_res20_4bit.safetensors" --predict "$apot/apot_res20_4bit_reference.safetensors" \
    --out "$tmp/logits.safetensors"
fi
exit $fail
