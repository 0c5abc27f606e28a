#!/usr/bin/env bash
# The float64 path of the program: `--evaluate CK --predict IN --out OUT --dtype f64` on the released APoT
# checkpoints (float and W4/A4) writes float64 `logits` within 1e-6 of the reference's `logits_f64` in every
# row (../shared/data/apot/README.md), with the same argmax; a bad --dtype and --dtype f64 for training are
# one-line errors. Exit 77 (skipped) when the shared APoT data are absent.
set -uo pipefail
exe="$1"
apot="${MINIDL_SHARED_DIR:-$(dirname "$0")/../../../../shared}/data/apot"
for bits in 32 4; do
  if [[ ! -e "$apot/apot_res20_${bits}bit.safetensors" || ! -e "$apot/apot_res20_${bits}bit_reference.safetensors" ]]
  then
    echo "SKIP: $apot/apot_res20_${bits}bit*.safetensors not found (shared APoT data absent)"
    exit 77
  fi
done
command -v python3 >/dev/null || { echo "FAIL: python3 not found (scripts/setup installs it)"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail=0

for bits in 32 4; do
  ck="$apot/apot_res20_${bits}bit.safetensors"
  ref="$apot/apot_res20_${bits}bit_reference.safetensors"
  if ! "$exe" --evaluate "$ck" --predict "$ref" --out "$tmp/out$bits.safetensors" --dtype f64 --threads 1 \
    >"$tmp/log$bits" 2>&1; then
    echo "FAIL ${bits}-bit: cifar_resnet20 --dtype f64 failed:"; cat "$tmp/log$bits"; fail=1; continue
  fi
  grep -q "running in float64 on the ref backend" "$tmp/log$bits" ||
    { echo "FAIL ${bits}-bit: the run does not say it ran in float64 on ref:"; cat "$tmp/log$bits"; fail=1; }
  # Reads both files with the standard library only (safetensors: u64 header length, JSON header, raw data).
  python3 - "$tmp/out$bits.safetensors" "$ref" "$bits" <<'EOF' || fail=1
import json, struct, sys

def tensor(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    t = header[name]
    assert t["dtype"] == "F64", f"{path}: {name} is {t['dtype']}, expected F64"
    lo, hi = t["data_offsets"]
    return t["shape"], struct.unpack(f"<{(hi - lo) // 8}d", data[lo:hi])

out_path, ref_path, bits = sys.argv[1:]
shape, got = tensor(out_path, "logits")
ref_shape, want = tensor(ref_path, "logits_f64")
assert shape == ref_shape, f"logits shape {shape}, logits_f64 shape {ref_shape}"
rows, k = shape
worst, bad = 0.0, []
for i in range(rows):
    g, w = got[i * k:(i + 1) * k], want[i * k:(i + 1) * k]
    d = max(abs(a - b) for a, b in zip(g, w))
    worst = max(worst, d)
    if d > 1e-6 or g.index(max(g)) != w.index(max(w)):
        bad.append(f"row {i}: max |diff| {d:.3g}, argmax {g.index(max(g))} vs {w.index(max(w))}")
if bad:
    print(f"FAIL {bits}-bit --dtype f64: " + "; ".join(bad))
    sys.exit(1)
print(f"ok   {bits}-bit --dtype f64: {rows} rows, max |logits - logits_f64| = {worst:.3g}")
EOF
done

expect_error() {  # expect_error NAME PATTERN ARGS...
  local name="$1" pattern="$2"
  shift 2
  "$exe" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [[ $rc -eq 0 || $rc -ge 128 || $(wc -l <"$tmp/err") -ne 1 ]] || ! grep -q -- "$pattern" "$tmp/err"; then
    echo "FAIL $name: exit code $rc, expected a one-line error mentioning '$pattern':"; cat "$tmp/err"; fail=1
  else
    echo "ok   $name: $(cat "$tmp/err")"
  fi
}
expect_error "bad --dtype" "--dtype" --evaluate "$apot/apot_res20_4bit.safetensors" --dtype f16
expect_error "--dtype f64 for training" "training runs in float32" --dtype f64 --epochs 1
MINIDL_BACKEND=cpu expect_error "--dtype f64 with MINIDL_BACKEND=cpu" "MINIDL_BACKEND=cpu" \
  --evaluate "$apot/apot_res20_4bit.safetensors" --predict "$apot/apot_res20_4bit_reference.safetensors" \
  --out "$tmp/x.safetensors" --dtype f64
exit $fail
