#!/usr/bin/env python3
"""Loader throughput, minidl against torchvision + PIL, on the same files in the same run.

  /usr/bin/python3 bench/loader_vs_torchvision.py LOADER_BINARY PHOTO_ROOT [--workers 1,2] [--repeats 5]

The work per image is the ImageNet training input: read, decode, RandomResizedCrop(224), horizontal flip,
ToTensor + Normalize, collate into batches of 32. torchvision: datasets.ImageFolder (PIL decode) in a
torch DataLoader with N worker processes; minidl: bench/loader (crop-before-decode, N worker threads).
img/s/core = img/s / N. After one warm-up pass each (page cache, worker start-up), the two are timed one pass at a
time, alternately, --repeats times, so load on the machine hits both alike; the figures are medians and the ratio
is the ratio of the medians. Photos: scripts/make-bench-photos.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

try:
    import torch
    import torchvision
    from torchvision import datasets, transforms as T
except ImportError as e:
    print(f"skipped: {e} (scripts/setup torch)")
    sys.exit(77)


class TorchvisionLoader:
    """A torch DataLoader with persistent workers: started (and warmed) once, then timed one pass at a time."""

    def __init__(self, root, workers):
        tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        ds = datasets.ImageFolder(root, tf)
        self.loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers,
                                                  persistent_workers=True, prefetch_factor=2)
        self.rate()  # warm-up pass

    def rate(self):
        t0 = time.perf_counter()
        n = 0
        for images, _labels in self.loader:
            n += images.shape[0]
        return n / (time.perf_counter() - t0)


def minidl_rate(loader, root, workers):
    out = subprocess.run([loader, root, "--workers", str(workers), "--epochs", "1"], check=True,
                         capture_output=True, text=True).stdout
    return float(out.split("img/s=")[1].split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("loader")
    ap.add_argument("root")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    nfiles = sum(len(f) for _, _, f in os.walk(a.root))
    print(f"{nfiles} files under {a.root}; torch {torch.__version__}, torchvision {torchvision.__version__}; "
          f"{a.repeats} interleaved passes each, medians")
    print(f"{'workers':>7} {'minidl img/s':>13} {'per core':>9} {'torchvision img/s':>18} {'per core':>9} {'ratio':>6}")
    for w in [int(x) for x in a.workers.split(",")]:
        minidl_rate(a.loader, a.root, w)  # warm-up pass (page cache)
        tv_loader = TorchvisionLoader(a.root, w)
        mine, tv = [], []
        for _ in range(a.repeats):
            mine.append(minidl_rate(a.loader, a.root, w))
            tv.append(tv_loader.rate())
        print("  passes minidl: " + " ".join(f"{x:.1f}" for x in mine) + " | torchvision: " +
              " ".join(f"{x:.1f}" for x in tv), file=sys.stderr)
        m, t = statistics.median(mine), statistics.median(tv)
        print(f"{w:>7} {m:>13.1f} {m / w:>9.1f} {t:>18.1f} {t / w:>9.1f} {m / t:>6.2f}")
        del tv_loader

if __name__ == "__main__":
    main()
