#!/usr/bin/python3
"""Writes the fixtures of the minidl-vs-PyTorch check (tests/pytorch/test_pytorch_parity.cpp).

Run by hand with Debian's PyTorch (not a pyenv python), from the repository root:

    /usr/bin/python3 tests/tools/gen_pytorch_fixtures.py            # writes tests/pytorch/fixtures/*.safetensors

The outputs are committed; CI runs only the C++ test. Every tensor is float32 (labels int64), made by torch with
fixed seeds, and the expected values are PyTorch's own forward outputs, gradients (backward of sum(y * gy) with a
random upstream gradient gy) and optimizer results. The files are written by the small safetensors writer below
(Debian has no `safetensors` module).

ResNet-20 initial weights are NOT stored (they would add 1.1 MB): they come from a counter-based generator
(FNV-1a of the key, splitmix64 per element) that the C++ test reimplements; every value is computed exactly in
float64 and rounded once to float32, so both sides get the same bits. `init_sample.<key>` (every 61st element)
lets the test prove that. The batch is chosen so that no ReLU input is within rounding error of 0 (resnet_step).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from torch_models import ResNetCifar  # noqa: E402

_DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(path, tensors, metadata=None):
    """safetensors: u64 LE header length, JSON header (8-byte padded with spaces), raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype not in _DTYPES:
            raise ValueError(f"{name}: dtype {t.dtype} not allowed in the fixtures (float32 / int64 only)")
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    print(f"  {os.path.relpath(path)}: {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def rnd(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, dtype=torch.float32) * (hi - lo) + lo


def leaf(t):
    return t.clone().requires_grad_(True)


# ---- single ops: inputs, outputs and gradients under prefix "<case>." ----

def conv_cases(out):
    # name: (N, C, H, W, K, kernel (kh, kw), stride, padding, dilation, groups, bias)
    cases = {
        "s2_p1_bias": (2, 3, 9, 9, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
        "dil2_p2": (2, 4, 8, 7, 6, (3, 3), (1, 1), (2, 2), (2, 2), 1, False),
        "groups2_bias": (2, 4, 7, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, True),
        "depthwise_3x5_s21": (2, 4, 9, 8, 8, (3, 5), (2, 1), (1, 2), (1, 1), 4, True),
        "proj_1x1_s2": (3, 16, 8, 8, 32, (1, 1), (2, 2), (0, 0), (1, 1), 1, False),
        "resnet_3x3": (2, 16, 8, 8, 16, (3, 3), (1, 1), (1, 1), (1, 1), 1, False),
    }
    for name, (n, c, h, w, k, ks, st, pd, dl, g, has_b) in cases.items():
        x = leaf(rnd(n, c, h, w))
        wt = leaf(rnd(k, c // g, *ks) * (1.0 / math.sqrt(c // g * ks[0] * ks[1])))
        b = leaf(rnd(k)) if has_b else None
        y = F.conv2d(x, wt, b, stride=st, padding=pd, dilation=dl, groups=g)
        gy = rnd(*y.shape)
        (y * gy).sum().backward()
        p = f"{name}."
        out.update({p + "x": x, p + "w": wt, p + "y": y, p + "gy": gy, p + "gx": x.grad, p + "gw": wt.grad})
        if has_b:
            out.update({p + "b": b, p + "gb": b.grad})
        # geometry for the C++ side: stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, has_bias
        out[p + "params"] = torch.tensor([*st, *pd, *dl, g, int(has_b)], dtype=torch.int64)


def batch_norm_cases(out):
    for name, (n, c, h, w), momentum in [("train", (4, 5, 6, 7), 0.1), ("train_n1", (1, 3, 5, 4), 0.3)]:
        x = leaf(rnd(n, c, h, w, lo=-2.0, hi=3.0))
        wt, b = leaf(rnd(c, lo=0.5, hi=1.5)), leaf(rnd(c))
        rm0, rv0 = rnd(c), rnd(c, lo=0.5, hi=2.0)
        rm, rv = rm0.clone(), rv0.clone()
        y = F.batch_norm(x, rm, rv, wt, b, training=True, momentum=momentum, eps=1e-5)
        gy = rnd(*y.shape)
        (y * gy).sum().backward()
        p = f"{name}."
        out.update({p + "x": x, p + "w": wt, p + "b": b, p + "running_mean": rm0, p + "running_var": rv0,
                    p + "y": y, p + "gy": gy, p + "gx": x.grad, p + "gw": wt.grad, p + "gb": b.grad,
                    p + "running_mean_after": rm, p + "running_var_after": rv,
                    p + "momentum": torch.tensor([momentum], dtype=torch.float32)})
    # eval: running statistics, which stay unchanged
    n, c, h, w = 3, 6, 5, 5
    x = leaf(rnd(n, c, h, w, lo=-2.0, hi=3.0))
    wt, b = leaf(rnd(c, lo=0.5, hi=1.5)), leaf(rnd(c))
    rm, rv = rnd(c), rnd(c, lo=0.5, hi=2.0)
    y = F.batch_norm(x, rm, rv, wt, b, training=False, eps=1e-5)
    gy = rnd(*y.shape)
    (y * gy).sum().backward()
    out.update({"eval.x": x, "eval.w": wt, "eval.b": b, "eval.running_mean": rm, "eval.running_var": rv,
                "eval.y": y, "eval.gy": gy, "eval.gx": x.grad, "eval.gw": wt.grad, "eval.gb": b.grad})


def pool_cases(out):
    # name: (op, input shape, kernel, stride, padding, count_include_pad)
    cases = {
        "max_k3s2p1": ("max", (2, 3, 9, 9), (3, 3), (2, 2), (1, 1), True),
        "max_k2s2": ("max", (2, 3, 8, 8), (2, 2), (2, 2), (0, 0), True),
        "max_k2x3_s1x2": ("max", (1, 2, 7, 9), (2, 3), (1, 2), (0, 1), True),
        "avg_k3s2p1_incl": ("avg", (2, 3, 9, 9), (3, 3), (2, 2), (1, 1), True),
        "avg_k3s2p1_excl": ("avg", (2, 3, 9, 9), (3, 3), (2, 2), (1, 1), False),
        "avg_k2s2": ("avg", (2, 3, 8, 6), (2, 2), (2, 2), (0, 0), True),
        "adaptive_1x1": ("adaptive", (2, 4, 5, 7), (1, 1), None, None, None),
        "adaptive_3x2": ("adaptive", (2, 3, 7, 5), (3, 2), None, None, None),
    }
    for name, (op, shape, k, s, pd, incl) in cases.items():
        x = leaf(rnd(*shape))
        if op == "max":
            y = F.max_pool2d(x, k, s, pd)
        elif op == "avg":
            y = F.avg_pool2d(x, k, s, pd, count_include_pad=incl)
        else:
            y = F.adaptive_avg_pool2d(x, k)
        gy = rnd(*y.shape)
        (y * gy).sum().backward()
        p = f"{name}."
        out.update({p + "x": x, p + "y": y, p + "gy": gy, p + "gx": x.grad})
        if op == "adaptive":
            out[p + "params"] = torch.tensor(list(k), dtype=torch.int64)
        else:  # kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, count_include_pad
            out[p + "params"] = torch.tensor([*k, *s, *pd, int(incl)], dtype=torch.int64)


def linear_cases(out):
    for name, (n, fin, fout, has_b) in {"small_bias": (5, 7, 3, True), "no_bias": (4, 9, 6, False),
                                        "fc_64x10": (16, 64, 10, True)}.items():
        x = leaf(rnd(n, fin))
        w = leaf(rnd(fout, fin) * (1.0 / math.sqrt(fin)))
        b = leaf(rnd(fout)) if has_b else None
        y = F.linear(x, w, b)
        gy = rnd(*y.shape)
        (y * gy).sum().backward()
        p = f"{name}."
        out.update({p + "x": x, p + "w": w, p + "y": y, p + "gy": gy, p + "gx": x.grad, p + "gw": w.grad})
        if has_b:
            out.update({p + "b": b, p + "gb": b.grad})


def cross_entropy_cases(out):
    for name, (n, c, ls) in {"ls0.1": (6, 10, 0.1), "ls0": (6, 10, 0.0), "ls0.1_wide": (8, 100, 0.1)}.items():
        logits = leaf(rnd(n, c, lo=-4.0, hi=4.0))
        target = torch.randint(0, c, (n,), dtype=torch.int64)
        loss = F.cross_entropy(logits, target, label_smoothing=ls)
        loss.backward()  # d loss / d logits with an upstream gradient of 1 (the loss is what a step differentiates)
        p = f"{name}."
        out.update({p + "logits": logits, p + "target": target, p + "loss": loss.reshape(1), p + "glogits": logits.grad,
                    p + "label_smoothing": torch.tensor([ls], dtype=torch.float32)})


# ---- ResNet-20 training step ----

MASK = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for byte in s.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def splitmix64(x):
    """splitmix64 of an array of uint64 counters (numpy wraps uint64 arithmetic modulo 2^64)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def init_value(key, shape):
    """The deterministic initial value of state-dict entry `key` (mirrored in test_pytorch_parity.cpp)."""
    n = int(np.prod(shape)) if len(shape) else 1
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_mean"):
        return torch.zeros(shape, dtype=torch.float32)
    if key.endswith("running_var"):
        return torch.ones(shape, dtype=torch.float32)
    with np.errstate(over="ignore"):
        z = splitmix64(np.arange(n, dtype=np.uint64) + np.uint64(fnv1a64("minidl-pytorch-parity/" + key)))
    s = ((z >> np.uint64(40)).astype(np.int64) - (1 << 23)).astype(np.float64) / float(1 << 23)  # [-1, 1), exact
    if len(shape) >= 2:  # conv / fc weight: uniform with Kaiming's variance 2/fan_in, bound rounded to 2^k
        fan_in = n // shape[0]
        v = s * 2.0 ** round(math.log2(math.sqrt(6.0 / fan_in)))
    elif key.startswith("fc."):  # fc bias
        v = s * 2.0 ** -4
    elif key.endswith("weight"):  # BN gamma in [0.75, 1.25)
        v = 1.0 + s * 0.25
    elif key.endswith("bn1.bias"):  # beta of a BN followed directly by a ReLU: [1.875, 2.125), fewer inputs near 0
        v = 2.0 + s * 2.0 ** -3
    else:  # other BN beta
        v = s * 2.0 ** -3
    return torch.from_numpy(v.astype(np.float32)).reshape(shape)


class ReluRecorder:
    """Within the block, F.relu (which torch_models uses) records its inputs, in call order."""

    def __enter__(self):
        self.orig, self.inputs = F.relu, []

        def relu(t, inplace=False):
            self.inputs.append(t.detach().double().flatten().clone())
            return self.orig(t, inplace=inplace)

        F.relu = relu
        return self

    def __exit__(self, *exc):
        F.relu = self.orig

    def all(self):
        return torch.cat(self.inputs)


def train_two_steps(init, x, labels, dtype, out=None, lr=0.1, momentum=0.9, wd=1e-4):
    """Two SGD steps of ResNet-20 (option B) on the same batch; records into `out` when given. Returns the model
    and every ReLU input of the two forwards (float64)."""
    model = ResNetCifar(20, 10, 3, option="B")
    model.load_state_dict(init)
    model.to(dtype).train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    with ReluRecorder() as rec:
        for step in (1, 2):  # the second update uses the momentum buffer
            opt.zero_grad(set_to_none=True)
            logits = model(x.to(dtype))
            loss = F.cross_entropy(logits, labels)
            loss.backward()
            if out is not None:
                out[f"step{step}.logits"] = logits.detach().clone()
                out[f"step{step}.loss"] = loss.detach().reshape(1).clone()
                if step == 1:
                    for k, p in model.named_parameters():
                        out["step1.grad." + k] = p.grad.clone()
            opt.step()
            if out is not None:
                for k, v in model.state_dict().items():
                    if v.dtype == torch.float32:  # parameters after the update, running stats after the forward
                        out[f"step{step}.after.{k}"] = v.clone()
    return model, rec.all()


def resnet_step(out, min_ratio, first_seed=6, batch=8):
    """Picks a well-conditioned batch, then records PyTorch's float32 two steps on it.

    A ReLU input within rounding error of 0 can go either way in two correct fp32 implementations, and one flipped
    ReLU moves a whole channel's gradient by ~1e-2 (through the BN backward). So the batch is the first seed where
    every ReLU input v of both forwards has |v64| >= min_ratio * |v32 - v64| (PyTorch float32 vs float64): the
    other implementation would need an error min_ratio times PyTorch's own at that element to flip it."""
    template = ResNetCifar(20, 10, 3, option="B")
    init = {k: init_value(k, tuple(v.shape)) for k, v in template.state_dict().items()}
    for seed in range(first_seed, first_seed + 2000):
        torch.manual_seed(seed)
        x = rnd(batch, 3, 32, 32)
        labels = torch.randint(0, 10, (batch,), dtype=torch.int64)
        _, v32 = train_two_steps(init, x, labels, torch.float32)
        m64, v64 = train_two_steps(init, x, labels, torch.float64)
        ratio = (v64.abs() / (v32 - v64).abs().clamp_min(1e-30)).min().item()
        margin = v64.abs().min().item()
        if ratio >= min_ratio:
            break
        if (seed - first_seed) % 20 == 19:
            print(f"  ... {seed - first_seed + 1} batches tried", flush=True)
    else:
        raise RuntimeError(f"no batch with ReLU margin ratio {min_ratio} found")
    print(f"  ResNet-20 batch: seed {seed}, smallest |ReLU input| {margin:.2e}, smallest |v64| / |v32 - v64| "
          f"{ratio:.1f} over {v64.numel()} ReLU inputs")
    for k, v in init.items():
        if v.dtype == torch.float32 and v.numel() > 1:
            out["init_sample." + k] = v.flatten()[::61].clone()
    out["x"], out["labels"] = x, labels
    m32, _ = train_two_steps(init, x, labels, torch.float32, out)
    # context for the tolerances: PyTorch's own float32 vs float64 after the two steps
    worst = 0.0
    for (k, a), (_, b) in zip(m32.state_dict().items(), m64.state_dict().items()):
        if a.is_floating_point():
            worst = max(worst, (a.double() - b).abs().max().item() / max(1e-6, b.abs().max().item()))
    print(f"  PyTorch float32 vs float64 after two steps: worst max-rel error over the state dict {worst:.2e}")
    m64 = ResNetCifar(20, 10, 3, option="B")
    m64.load_state_dict(init)
    m64.double().train()
    F.cross_entropy(m64(x.double()), labels).backward()
    worst_g = max((out["step1.grad." + k].double() - p.grad).abs().max().item() / max(1e-6, p.grad.abs().max().item())
                  for k, p in m64.named_parameters())
    print(f"  PyTorch float32 vs float64, step-1 gradients: worst max-rel error over the parameters {worst_g:.2e}")
    return {"seed": seed, "relu_min_abs_fp64": f"{margin:.3e}", "relu_min_ratio": f"{ratio:.2f}",
            "torch_fp32_vs_fp64_after_two_steps": f"{worst:.3e}", "torch_fp32_vs_fp64_step1_grads": f"{worst_g:.3e}"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "pytorch", "fixtures"))
    ap.add_argument("--relu-ratio", type=float, default=8.0,
                    help="smallest |v64| / |v32 - v64| over the ResNet-20 ReLU inputs (default %(default)s)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    meta = {"generator": "tests/tools/gen_pytorch_fixtures.py", "torch": torch.__version__}
    for fname, fn, seed in [("conv2d", conv_cases, 1), ("batch_norm", batch_norm_cases, 2), ("pool", pool_cases, 3),
                            ("linear", linear_cases, 4), ("cross_entropy", cross_entropy_cases, 5)]:
        torch.manual_seed(seed)
        t = {}
        fn(t)
        save_safetensors(os.path.join(args.out, fname + ".safetensors"), t, meta)
    t = {}
    info = resnet_step(t, args.relu_ratio)
    save_safetensors(os.path.join(args.out, "resnet20_step.safetensors"), t,
                     dict(meta, **info, model="ResNet-20 option B", lr=0.1, momentum=0.9, weight_decay=1e-4))


if __name__ == "__main__":
    main()
