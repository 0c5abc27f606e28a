#!/usr/bin/env bash
# ONNX export (docs/export.md), three CTest steps sharing one directory of models:
#   onnx_export.sh EXE DIR models   trains a small ResNet-20 per scheme on Fashion-MNIST (--max-steps, seconds)
#                                   and exports each with --export onnx (one through --resume, the rest -e),
#                                   with 500 real test images and minidl's logits (--export-samples)
#   onnx_export.sh EXE DIR checker  onnx.checker (full check) on every exported model
#   onnx_export.sh EXE DIR ort      onnxruntime against minidl's logits: the QCDQ (standard-ONNX) models as
#                                   written, the QONNX ones (APoT, PoT, binary) with their QONNX nodes rewritten
#                                   into standard ops (check_onnx_export.py --lower-qonnx)
# Exit 77 (CTest: skipped) when Fashion-MNIST, python3-onnx or onnxruntime is missing (scripts/setup onnx).
set -uo pipefail
exe="$1" dir="$2" step="$3"
here="$(cd "$(dirname "$0")" && pwd)"
check="$here/../../../tests/onnx/check_onnx_export.py"
data="${MINIDL_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
# onnxruntime comes from PyPI into the venv scripts/setup onnx makes (Debian's python3-onnx is visible in it).
py="${MINIDL_ONNX_PYTHON:-$HOME/.cache/minidl/onnx-venv/bin/python}"
[[ -x "$py" ]] || py=/usr/bin/python3

# name, then the training flags of each model
models=(
  "float|--scheme float"
  "uniform2|--scheme uniform --bit 2"
  "uniform4|--scheme uniform --bit 4"
  "uniform8|--scheme uniform --bit 8"
  "uniform4_shortcutA|--scheme uniform --bit 4 --shortcut A"
  "pact4|--scheme pact --bit 4"
  "apot4|--scheme apot --bit 4"
  "pot3|--scheme pot --bit 3"
  "binary_pact2|--scheme binary --bit 1 --act-bit 2"
)
qcdq=(float uniform2 uniform4 uniform8 uniform4_shortcutA pact4)
qonnx=(apot4 pot3 binary_pact2)

case "$step" in
  models)
    [[ -e "$data/t10k-images-idx3-ubyte" || -e "$data/t10k-images-idx3-ubyte.gz" ]] ||
      { echo "SKIP: Fashion-MNIST not found in $data"; exit 77; }
    rm -rf "$dir" && mkdir -p "$dir"
    for m in "${models[@]}"; do
      name="${m%%|*}" flags="${m#*|}"
      # shellcheck disable=SC2086
      if ! OMP_NUM_THREADS=1 "$exe" --dataset fashion-mnist --data "$data" $flags --epochs 1 --max-steps 20 --lr 0.02 \
        --batch-size 32 --threads 1 --workers 1 --print-freq 100 --save "$dir/$name.ck" >"$dir/$name.train.log" 2>&1
      then
        echo "FAIL $name: training failed:"; tail -5 "$dir/$name.train.log"; exit 1
      fi
      src=(-e "$dir/$name.ck/last.safetensors")
      [[ $name == uniform4 ]] && src=(--resume "$dir/$name.ck")  # the --resume spelling of the source
      if ! OMP_NUM_THREADS=1 "$exe" "${src[@]}" --export onnx "$dir/$name.onnx" --export-samples 500 --threads 1 \
        --workers 1 >"$dir/$name.export.log" 2>&1; then
        echo "FAIL $name: export failed:"; cat "$dir/$name.export.log"; exit 1
      fi
      echo "ok   $name: $(grep '^=> wrote .*nodes' "$dir/$name.export.log")"
    done
    ;;
  checker)
    ls "$dir"/*.onnx >/dev/null 2>&1 || { echo "SKIP: no exported models in $dir (the models step was skipped)"; exit 77; }
    "$py" "$check" checker "$dir"/*.onnx
    ;;
  ort)
    ls "$dir"/*.onnx >/dev/null 2>&1 || { echo "SKIP: no exported models in $dir (the models step was skipped)"; exit 77; }
    fail=0
    for name in "${qcdq[@]}"; do
      "$py" "$check" ort "$dir/$name.onnx"
      rc=$?
      [[ $rc -eq 77 ]] && exit 77
      [[ $rc -ne 0 ]] && fail=1
    done
    for name in "${qonnx[@]}"; do
      "$py" "$check" ort "$dir/$name.onnx" --lower-qonnx || fail=1
    done
    exit $fail
    ;;
  *) echo "usage: $0 EXE DIR models|checker|ort"; exit 2 ;;
esac
