#!/usr/bin/env python3
"""Loader throughput, minidl against torchvision + PIL, on the same files in the same run.

  /usr/bin/python3 bench/loader_vs_torchvision.py LOADER_BINARY PHOTO_ROOT [--workers 1,2] [--epochs 2]

The work per image is the ImageNet training input: read, decode, RandomResizedCrop(224), horizontal flip,
ToTensor + Normalize, collate into batches of 32. torchvision: datasets.ImageFolder (PIL decode) in a
torch DataLoader with N worker processes; minidl: bench/loader (crop-before-decode, N worker threads).
img/s/core = img/s / N. Each is the best of --epochs passes (the first warms the page cache). The two are
measured alternately, so load on the machine hits both. Photos: scripts/make-bench-photos.
"""
import argparse
import os
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


def torchvision_rate(root, workers, epochs):
    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = datasets.ImageFolder(root, tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers,
                                         persistent_workers=True, prefetch_factor=2)
    best = 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = 0
        for images, _labels in loader:
            n += images.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("loader")
    ap.add_argument("root")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    nfiles = sum(len(f) for _, _, f in os.walk(a.root))
    print(f"{nfiles} files under {a.root}; torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"{'workers':>7} {'minidl img/s':>13} {'per core':>9} {'torchvision img/s':>18} {'per core':>9} {'ratio':>6}")
    for w in [int(x) for x in a.workers.split(",")]:
        out = subprocess.run([a.loader, a.root, "--workers", str(w), "--epochs", str(a.epochs)], check=True,
                             capture_output=True, text=True).stdout
        mine = float(out.split("img/s=")[1].split()[0])
        tv = torchvision_rate(a.root, w, a.epochs)
        print(f"{w:>7} {mine:>13.1f} {mine / w:>9.1f} {tv:>18.1f} {tv / w:>9.1f} {mine / tv:>6.2f}")


if __name__ == "__main__":
    main()
