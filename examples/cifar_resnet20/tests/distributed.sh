#!/usr/bin/env bash
# Distributed runs as real processes: mpirun -np 2 trains and prints the world size; with the environment form
# (RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT) a rank killed with SIGKILL makes the other stop with a clear error
# within MINIDL_DIST_TIMEOUT, and both ranks resumed from rank 0's checkpoint finish the run (each epoch once).
# Exit 77 (skipped) without mpirun or Fashion-MNIST.
set -uo pipefail
exe="$1"
data="${2:-/usr/share/datasets/fashion-mnist}"
command -v mpirun >/dev/null || { echo "skip: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
[[ -e "$data/train-images-idx3-ubyte.gz" ]] || { echo "skip: Fashion-MNIST not found in $data"; exit 77; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
args=(--dataset fashion-mnist --data "$data" --augment none --max-steps 3 --batch-size 32 --threads 1 --workers 1
      --print-freq 1)

# 1. mpirun
if ! mpirun -np 2 --oversubscribe "$exe" "${args[@]}" --epochs 1 >"$tmp/mpi.log" 2>&1; then
  echo "FAIL: mpirun -np 2 failed"; cat "$tmp/mpi.log"; exit 1
fi
grep -q "=> distributed: world size 2" "$tmp/mpi.log" || { echo "FAIL: no world size line"; cat "$tmp/mpi.log"; exit 1; }
echo "mpirun -np 2: $(grep -m1 '=> distributed' "$tmp/mpi.log")"

# 2. kill rank 1 after rank 0's first checkpoint
port=$((20000 + RANDOM % 20000))
launch() {  # rank, log, extra args
  RANK=$1 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port MINIDL_DIST_TIMEOUT=30 \
    "$exe" "${args[@]}" --epochs 4 "${@:3}" >"$2" 2>&1 &
}
launch 0 "$tmp/r0.log" --save "$tmp/run"; pid0=$!
launch 1 "$tmp/r1.log" --save "$tmp/run"; pid1=$!
for _ in $(seq 1 900); do
  [[ -e "$tmp/run/last.safetensors" ]] && break
  kill -0 $pid0 2>/dev/null || break
  sleep 0.2
done
kill -9 $pid1 2>/dev/null
start=$SECONDS
wait $pid0; rc=$?
wait $pid1 2>/dev/null
if [[ $rc -ne 2 ]] || ! grep -q "error: distributed (gloo, rank 0 of 2)" "$tmp/r0.log"; then
  echo "FAIL: rank 0 did not stop with a distributed error after rank 1 was killed (rc $rc)"; cat "$tmp/r0.log"
  exit 1
fi
echo "rank 0 stopped $((SECONDS - start)) s after the kill: $(grep 'error:' "$tmp/r0.log")"

# 3. resume both ranks from rank 0's checkpoint
port=$((port + 1))
launch 0 "$tmp/r0b.log" --resume "$tmp/run"; pid0=$!
launch 1 "$tmp/r1b.log" --resume "$tmp/run"; pid1=$!
wait $pid0; rc0=$?
wait $pid1; rc1=$?
if [[ $rc0 -ne 0 || $rc1 -ne 0 ]]; then
  echo "FAIL: resumed ranks exited $rc0/$rc1"; cat "$tmp/r0b.log" "$tmp/r1b.log"; exit 1
fi
epochs=$(tail -n +2 "$tmp/run/metrics.csv" | cut -d, -f1 | tr '\n' ' ')
[[ "$epochs" == "0 1 2 3 " ]] || { echo "FAIL: metrics.csv epochs '$epochs'"; cat "$tmp/r0b.log"; exit 1; }
echo "resumed: $(grep -m1 'resumed from' "$tmp/r0b.log"); metrics.csv epochs: $epochs"
