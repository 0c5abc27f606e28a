#!/usr/bin/env python3
"""Compares minidl's ImageNet transforms and JPEG decoding with torchvision 0.14 + Pillow on real photos.

  check_torchvision_transforms.py MINIDL_TRANSFORM_DUMP [--keep DIR]

Photos: scikit-image's sample photos (Debian python3-skimage), cut to several sizes and saved as PNG (lossless:
both sides see the same pixels) and as quality-90 JPEGs in RGB, grayscale and CMYK. Every case runs the same
operation in minidl (minidl_transform_dump) and in torchvision on a PIL image, and checks the largest
difference against a stated tolerance:
  decode, crop, flip: exact (0); CMYK -> RGB: 1 grey level; Resize / resized crop (bilinear, antialiased, Pillow's
  fixed-point arithmetic): 1 grey level; Normalize: 1e-6.
Exits 77 (CTest: skipped) when torchvision, Pillow or the sample photos are missing.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from PIL import Image
    import torchvision
    import torchvision.transforms as T
    import torchvision.transforms.functional as F
except ImportError as e:
    print(f"skipped: {e} (install python3-torchvision python3-pil: scripts/setup torch)")
    sys.exit(77)

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png"]


def photo_dir():
    for d in ("/usr/lib/python3/dist-packages/skimage/data", "/usr/share/skimage-data"):
        if all(os.path.exists(os.path.join(d, p)) for p in PHOTOS):
            return d
    return None


def read_dump(path):
    with open(path, "rb") as f:
        header = f.readline().split()
        h, w, c, kind = int(header[0]), int(header[1]), int(header[2]), header[3].decode()
        data = f.read()
    if kind == "u8":
        return np.frombuffer(data, np.uint8).reshape(h, w, c).astype(np.int32)
    return np.frombuffer(data, np.float32).reshape(c, h, w)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: check_torchvision_transforms.py MINIDL_TRANSFORM_DUMP")
    tool = sys.argv[1]
    src = photo_dir()
    if src is None:
        print("skipped: scikit-image sample photos not found (install python3-skimage)")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="minidl_tv_")
    # Photos at several sizes and aspect ratios (odd sizes included), as PNG and JPEG.
    sizes = [(375, 500), (333, 517), (512, 384), (97, 211)]
    files = []
    for i, name in enumerate(PHOTOS):
        im = Image.open(os.path.join(src, name)).convert("RGB")
        h, w = sizes[i % len(sizes)]
        im = im.resize((w, h), Image.BILINEAR)
        base = os.path.join(tmp, os.path.splitext(name)[0])
        im.save(base + ".png")
        im.save(base + ".jpg", quality=90)
        files.append(base)
    gray = Image.open(files[0] + ".png").convert("L")
    gray.save(os.path.join(tmp, "gray.jpg"), quality=90)
    Image.open(files[1] + ".png").convert("CMYK").save(os.path.join(tmp, "cmyk.jpg"), quality=90)

    def pil(path):
        return Image.open(path).convert("RGB")

    cases = []  # (label, file, minidl op args, torchvision function, tolerance)
    for base in files:
        png, jpg = base + ".png", base + ".jpg"
        img = pil(png)
        w, h = img.size
        cases += [
            ("decode jpeg", jpg, ["decode"], lambda p: pil(p), 0),
            ("resize 256", png, ["resize", "256"], lambda p: T.Resize(256)(pil(p)), 1),
            ("resize 73", png, ["resize", "73"], lambda p: T.Resize(73)(pil(p)), 1),
            ("resize (200, 300) up/down", png, ["resize", "200", "300"], lambda p: T.Resize((200, 300))(pil(p)), 1),
            ("resize (600, 700) upscale", png, ["resize", "600", "700"], lambda p: T.Resize((600, 700))(pil(p)), 1),
            ("center crop 224", png, ["center_crop", "224", "224"], lambda p: T.CenterCrop(224)(pil(p)), 0),
            ("center crop 101x333", png, ["center_crop", "101", "333"], lambda p: T.CenterCrop((101, 333))(pil(p)), 0),
            ("center crop larger (pads)", png, ["center_crop", str(h + 7), str(w + 4)],
             lambda p, h=h, w=w: T.CenterCrop((h + 7, w + 4))(pil(p)), 0),
            ("resized crop small window", png, ["resized_crop", "10", "17", "40", "61", "224", "224"],
             lambda p: F.resized_crop(pil(p), 10, 17, 40, 61, [224, 224]), 1),
            ("resized crop large window", png, ["resized_crop", "3", "5", str(h - 9), str(w - 11), "64", "64"],
             lambda p, h=h, w=w: F.resized_crop(pil(p), 3, 5, h - 9, w - 11, [64, 64]), 1),
            ("rrc central fallback", png, ["rrc_fallback", "224", "224"],
             lambda p: T.RandomResizedCrop(224, scale=(2.0, 2.0))(pil(p)), 1),
            ("flip", png, ["flip"], lambda p: F.hflip(pil(p)), 0),
            ("normalize", png, ["normalize"],
             lambda p: T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(T.ToTensor()(pil(p))), 1e-6),
            ("region decode + resize", jpg, ["decode_crop", "21", "35", str(h // 2), str(w // 2), "112", "112"],
             lambda p, h=h, w=w: F.resized_crop(pil(p), 21, 35, h // 2, w // 2, [112, 112]), 1),
            ("region decode, odd window", jpg, ["decode_crop", "7", "9", "33", "45", "33", "45"],
             lambda p: F.crop(pil(p), 7, 9, 33, 45), 0),
        ]
    cases += [
        ("decode grayscale jpeg", os.path.join(tmp, "gray.jpg"), ["decode"], lambda p: pil(p), 0),
        ("decode cmyk jpeg", os.path.join(tmp, "cmyk.jpg"), ["decode"], lambda p: pil(p), 1),
        ("region decode cmyk", os.path.join(tmp, "cmyk.jpg"), ["decode_crop", "16", "16", "64", "80", "64", "80"],
         lambda p: F.crop(pil(p), 16, 16, 64, 80), 1),
    ]
    failures = 0
    worst = {}
    out = os.path.join(tmp, "out.bin")
    for label, path, args, ref_fn, tol in cases:
        r = subprocess.run([tool, path, out] + args, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"FAIL {label} on {os.path.basename(path)}: minidl_transform_dump: {r.stderr.strip()}")
            failures += 1
            continue
        mine = read_dump(out)
        ref = ref_fn(path)
        ref = ref.numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref).astype(np.int32)
        if mine.shape != ref.shape:
            print(f"FAIL {label} on {os.path.basename(path)}: shape {mine.shape} vs torchvision {ref.shape}")
            failures += 1
            continue
        diff = float(np.abs(mine.astype(np.float64) - ref.astype(np.float64)).max())
        worst[label] = max(worst.get(label, 0.0), diff)
        if diff > tol:
            n_off = int((np.abs(mine.astype(np.float64) - ref) > tol).sum())
            print(f"FAIL {label} on {os.path.basename(path)}: max |diff| {diff} > {tol} ({n_off} values)")
            failures += 1
    for label, d in worst.items():
        print(f"{label:32s} max |minidl - torchvision| = {d:g}")
    print(f"torchvision {torchvision.__version__}, Pillow {Image.__version__}: {len(cases)} cases, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
