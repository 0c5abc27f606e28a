#!/usr/bin/env python3
"""minidl vs PyTorch, interleaved in one run on the same machine.

For each case (model, mode, batch) it alternates: one minidl measurement (the bench/train_step program, a
fresh process) then one PyTorch measurement (in this process), `--repeats` times, and prints img/s min / median /
max for both and the ratio minidl/PyTorch of the medians (and of each interleaved pair: min / median / max).

  python3 bench/compare_pytorch.py --train-step build/bench/bench/train_step --threads 2 --repeats 5

Needs Debian's python3-torch (`scripts/setup torch`). Run it on an idle machine: the ratio is what counts,
absolute figures move +-15% with load.

On a GPU (scripts/gpu-check): --device cuda runs both sides on the GPU; --tf32 turns TF32 on for both
(torch.backends.{cuda.matmul,cudnn}.allow_tf32 and minidl's MINIDL_CUDA_TF32=1), otherwise both run strict fp32.
--batch20 / --batch18 set the batch sizes. Each case also prints a machine-readable line:
  SUMMARY case=resnet20-train device=cuda tf32=0 minidl=... torch=... ratio=...
On the cpu with 2+ threads it ends with cpu_round_trip_ns=N when bench/core_ping_pong sits next to train_step: the
host's mode before the case (~70-110 ns: the vCPUs share a cache; ~400 ns: far apart, PyTorch then runs slower).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ResNet18, ResNetCifar  # noqa: E402

CASES = {
    "resnet20-train": ("resnet20", "train", 128, (3, 32, 32), 10),
    "resnet20-eval": ("resnet20", "eval", 128, (3, 32, 32), 10),
    "resnet18-train": ("resnet18", "train", 32, (3, 224, 224), 1000),
    "resnet18-eval": ("resnet18", "eval", 32, (3, 224, 224), 1000),
}


def torch_img_per_s(model_name, mode, batch, shape, classes, steps, warmup, device="cpu"):
    torch.manual_seed(0)
    model = ResNetCifar(20, classes, shape[0], option="B") if model_name == "resnet20" else ResNet18(classes)
    model = model.to(device)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, classes, (batch,), device=device)

    def sync():
        if device != "cpu":
            torch.cuda.synchronize()

    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        if mode == "train":
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        else:
            model.eval()
            with torch.no_grad():
                model(x)

    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return batch * steps / (time.perf_counter() - t0)


def minidl_img_per_s(exe, model_name, mode, batch, steps, warmup, threads, device="cpu", tf32=False,
                     cudnn_benchmark=False):
    cmd = [exe, "--model", model_name, "--mode", mode, "--batch", str(batch), "--steps", str(steps),
           "--warmup", str(warmup), "--threads", str(threads), "--device", device]
    env = dict(os.environ, MINIDL_CUDA_TF32="1" if tf32 else "0")
    if cudnn_benchmark:
        env["MINIDL_CUDNN_BENCHMARK"] = "1"
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    for line in out.splitlines():
        if line.startswith("RESULT"):
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
            return float(fields["img_per_s"])
    raise RuntimeError(f"no RESULT line from {' '.join(cmd)}:\n{out}")


def cpu_round_trip_ns(train_step):
    """The vCPUs' cache-line round trip from bench/core_ping_pong next to train_step (None when it is not there or
    fails): ~70-110 ns when the two CPUs share a cache, ~400 ns when they are far apart, a mode of the shared host
    that moves both sides' speed (BENCHMARKS.md, docs/deploy.md)."""
    exe = os.path.join(os.path.dirname(os.path.abspath(train_step)), "core_ping_pong")
    if not os.access(exe, os.X_OK):
        return None
    try:
        out = subprocess.run([exe, "--repeats", "1", "--trips", "100000"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    for line in out.splitlines():
        if line.startswith("RESULT"):
            return float(dict(f.split("=", 1) for f in line.split()[1:])["round_trip_ns"])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-step", required=True, help="path to minidl's bench/train_step program")
    ap.add_argument("--cases", default="resnet20-train,resnet20-eval,resnet18-train",
                    help="comma-separated: " + ",".join(CASES))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tf32", action="store_true", help="allow TF32 on both sides (GPU only)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="minidl times cuDNN's algorithms too (MINIDL_CUDNN_BENCHMARK=1), as PyTorch does here "
                         "(cudnn.benchmark = True); default: minidl's heuristics (GPU only)")
    ap.add_argument("--batch20", type=int, default=None, help="ResNet-20 batch (default 128)")
    ap.add_argument("--batch18", type=int, default=None, help="ResNet-18 batch (default 32)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("compare_pytorch: --device cuda but PyTorch sees no GPU")
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True  # PyTorch's fastest configuration; minidl uses its heuristics
    print(f"device {args.device}, TF32 {'on' if args.tf32 else 'off'}"
          + (f", minidl cuDNN algorithms {'timed' if args.cudnn_benchmark else 'by heuristics'}"
             if args.device == "cuda" else ""))
    print(f"PyTorch {torch.__version__}, {args.threads} threads, {args.repeats} interleaved repeats")
    print(f"{'case':16} {'minidl img/s (min/med/max)':>30} {'PyTorch img/s (min/med/max)':>30} "
          f"{'ratio of medians':>17} {'pairwise ratio (min/med/max)':>30}")
    for name in args.cases.split(","):
        model_name, mode, batch, shape, classes = CASES[name]
        rt = cpu_round_trip_ns(args.train_step) if args.device == "cpu" and args.threads > 1 else None
        if model_name == "resnet20" and args.batch20:
            batch = args.batch20
        if model_name == "resnet18" and args.batch18:
            batch = args.batch18
        steps = args.steps if model_name == "resnet20" else max(2, args.steps // 3)
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(minidl_img_per_s(args.train_step, model_name, mode, batch, steps, args.warmup, args.threads,
                                         args.device, args.tf32, args.cudnn_benchmark))
            theirs.append(torch_img_per_s(model_name, mode, batch, shape, classes, steps, args.warmup, args.device))
        pair = [a / b for a, b in zip(ours, theirs)]

        def mmm(v):
            return f"{min(v):8.1f} {statistics.median(v):8.1f} {max(v):8.1f}"

        print(f"{name:16} {mmm(ours):>30} {mmm(theirs):>30} {statistics.median(ours) / statistics.median(theirs):17.2f}"
              f" {min(pair):9.2f} {statistics.median(pair):9.2f} {max(pair):9.2f}", flush=True)
        print(f"SUMMARY case={name} batch={batch} device={args.device} tf32={int(args.tf32)} "
              f"minidl={statistics.median(ours):.1f} torch={statistics.median(theirs):.1f} "
              f"ratio={statistics.median(ours) / statistics.median(theirs):.3f}"
              + (f" cpu_round_trip_ns={rt:.0f}" if rt is not None else ""), flush=True)


if __name__ == "__main__":
    main()
