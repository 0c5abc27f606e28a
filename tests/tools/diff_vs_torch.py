#!/usr/bin/python3
"""Random op programs, run by minidl and by PyTorch, compared value by value and gradient by gradient.

Each program is a small random graph over minidl's differentiable ops (elementwise with broadcasting, scalar
operands, reductions over random dims, views of every kind, matmul / linear / cat, losses, conv2d, pooling, batch
norm). The generator builds it with PyTorch itself (float64), so only programs PyTorch accepts are generated, and
keeps inputs inside each op's domain (log / sqrt / pow of positives, denominators away from 0). The loss is a
random weighting of some outputs; one backward pass gives every leaf its gradient.

minidl runs the program through tests/tools/run_op_program.cpp (MINIDL_BACKEND=ref|cpu) in float32 or float64; the
reference is PyTorch in float64 on the same float64 inputs (rounded to float32 first in float32 mode). Checked: every
node's shape and values, every leaf's gradient, and the leaves after the run (batch norm's running statistics).
Error measure: max |minidl - torch64| / max(1, max |torch64|) per tensor, within 1e-10 in float64 mode; in float32
mode within 2e-4 + 50 x PyTorch's own float32 error on the same tensor (PyTorch float32 vs float64).

Ill-conditioned programs are left out, not compared (counted and printed): where an input of a kink (relu, abs,
clamp's bounds, amax / max-pool's top two values) is closer to it than the dtype's rounding could move it, two
correct implementations can take different sides. Exact ties (from expand, cat of a tensor with itself, x - x)
stay in: they test the tie conventions (amax and max-pool split the gradient evenly among tied maxima,
relu'(0) = 0, abs'(0) = 0, clamp passes the gradient at its bounds).

With --hooks, the forward runs under saved-tensor hooks (tests/tools/saved_tensor_modes.h): every saved tensor kept
as is, or masks kept as one bit per element as activation-compressed training keeps them. Ops save other tensors
under hooks, and a tensor labelled a mask that backward reads by value shows as a wrong gradient.

With --invalid, each program instead gets one node changed (a dim or size out of range, a repeated dim, an input
of another shape, a class target out of range, p or label smoothing outside [0, 1]) until PyTorch refuses it, and
minidl must refuse it too, at the same node, with minidl::Error: never accept it, never crash.

  diff_vs_torch.py --exe BUILD/tests/minidl_run_op_program --backend cpu --dtype float32 --programs 150 [--seed S]
Exit 0: every program agreed; 1: a mismatch (each written to --failures DIR as PROGRAM.json with a report);
77: PyTorch is not installed (the CTest entry reports skipped).
"""

import argparse
import collections
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import warnings

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("skipped: PyTorch is not installed (scripts/setup torch)")
    sys.exit(77)

torch.set_grad_enabled(True)
# invalid programs may hand mse_loss operands of two shapes, which PyTorch broadcasts with a warning
warnings.filterwarnings("ignore", message="Using a target size")

MAX_NUMEL = 1200  # the largest result a node may have (a Winograd-shaped convolution's: 2 x 16 x 6 x 6)


def tmax(t, empty):
    """max of a tensor's elements, `empty` for an empty one (torch 1.13's max has no `initial`)."""
    return float(t.max()) if t.numel() else empty


def tmin(t, empty):
    return float(t.min()) if t.numel() else empty


# ---- the reference interpreter (the same op names and attributes as run_op_program.cpp) ----


def conv_kw(n):
    return dict(stride=(n.get("stride_h", 1), n.get("stride_w", 1)), padding=(n.get("pad_h", 0), n.get("pad_w", 0)),
                dilation=(n.get("dilation_h", 1), n.get("dilation_w", 1)), groups=n.get("groups", 1))


def pool_kw(n):
    return dict(kernel_size=(n.get("kernel_h", 1), n.get("kernel_w", 1)),
                stride=(n.get("stride_h", 1), n.get("stride_w", 1)), padding=(n.get("pad_h", 0), n.get("pad_w", 0)))


def reduce_dims(x, n):
    dims = n.get("dims", [])
    return tuple(dims) if dims else tuple(range(x.dim()))


def t_sum(x, n):
    if not n.get("dims") and not n.get("keepdim"):
        return x.sum()
    return x.sum(reduce_dims(x, n), keepdim=n.get("keepdim", False))


def t_mean(x, n):
    if not n.get("dims") and not n.get("keepdim"):
        return x.mean()
    return x.mean(reduce_dims(x, n), keepdim=n.get("keepdim", False))


def t_amax(x, n):
    if x.dim() == 0:
        return x.clone()
    return torch.amax(x, reduce_dims(x, n), keepdim=n.get("keepdim", False))


def t_slice(x, n):
    index = [slice(None)] * x.dim()
    index[n["dim"]] = slice(n["start"], n["end"], n["step"])
    return x[tuple(index)]


def t_batch_norm(a, n):
    w, b = (a[3], a[4]) if len(a) > 3 else (None, None)
    return F.batch_norm(a[0], a[1], a[2], w, b, training=n["training"], momentum=n.get("momentum", 0.1),
                        eps=n.get("eps", 1e-5))


OPS = {
    "add": lambda a, n: a[0] + a[1],
    "sub": lambda a, n: a[0] - a[1],
    "mul": lambda a, n: a[0] * a[1],
    "div": lambda a, n: a[0] / a[1],
    "pow_tensor": lambda a, n: torch.pow(a[0], a[1]),
    "add_scalar": lambda a, n: a[0] + n["s"],
    "rsub_scalar": lambda a, n: n["s"] - a[0],
    "mul_scalar": lambda a, n: a[0] * n["s"],
    "div_scalar": lambda a, n: a[0] / n["s"],
    "rdiv_scalar": lambda a, n: n["s"] / a[0],
    "neg": lambda a, n: -a[0],
    "exp": lambda a, n: torch.exp(a[0]),
    "log": lambda a, n: torch.log(a[0]),
    "sqrt": lambda a, n: torch.sqrt(a[0]),
    "abs": lambda a, n: torch.abs(a[0]),
    "relu": lambda a, n: torch.relu(a[0]),
    "sigmoid": lambda a, n: torch.sigmoid(a[0]),
    "tanh": lambda a, n: torch.tanh(a[0]),
    "pow": lambda a, n: torch.pow(a[0], n["e"]),
    "clamp": lambda a, n: torch.clamp(a[0], n["lo"], n["hi"]),
    "sum": lambda a, n: t_sum(a[0], n),
    "mean": lambda a, n: t_mean(a[0], n),
    "amax": lambda a, n: t_amax(a[0], n),
    "matmul": lambda a, n: torch.matmul(a[0], a[1]),
    "linear": lambda a, n: F.linear(a[0], a[1], a[2] if len(a) > 2 else None),
    "cat": lambda a, n: torch.cat(a, n["dim"]),
    "reshape": lambda a, n: a[0].reshape(n["shape"]),
    "view": lambda a, n: a[0].view(n["shape"]),
    "permute": lambda a, n: a[0].permute(n["dims"]),
    "transpose": lambda a, n: a[0].transpose(n["d0"], n["d1"]),
    "narrow": lambda a, n: a[0].narrow(n["dim"], n["start"], n["length"]),
    "slice": lambda a, n: t_slice(a[0], n),
    "select": lambda a, n: a[0].select(n["dim"], n["index"]),
    "expand": lambda a, n: a[0].expand(n["shape"]),
    "squeeze": lambda a, n: a[0].squeeze(n["dim"]),
    "unsqueeze": lambda a, n: a[0].unsqueeze(n["dim"]),
    "flatten": lambda a, n: a[0].flatten(n["start"], n["end"]),
    "contiguous": lambda a, n: a[0].contiguous(),
    "clone": lambda a, n: a[0].clone(),
    "log_softmax": lambda a, n: F.log_softmax(a[0], n["dim"]),
    "cross_entropy": lambda a, n: F.cross_entropy(a[0], a[1], label_smoothing=n.get("label_smoothing", 0.0)),
    "nll_loss": lambda a, n: nll_loss(a[0], a[1], n.get("label_smoothing", 0.0)),
    "mse_loss": lambda a, n: F.mse_loss(a[0], a[1]),
    "conv2d": lambda a, n: F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, **conv_kw(n)),
    "max_pool2d": lambda a, n: F.max_pool2d(a[0], **pool_kw(n)),
    "avg_pool2d": lambda a, n: F.avg_pool2d(a[0], count_include_pad=n.get("count_include_pad", True), **pool_kw(n)),
    "adaptive_avg_pool2d": lambda a, n: F.adaptive_avg_pool2d(a[0], (n["out_h"], n["out_w"])),
    "batch_norm": t_batch_norm,
    "batch_norm_relu": lambda a, n: torch.relu(t_batch_norm(a, n)),
    "batch_norm_add_relu": lambda a, n: torch.relu(t_batch_norm([a[0]] + a[2:], n) + a[1]),
    "conv2d_bn_inference": lambda a, n: t_conv_bn_inference(a, n),
    "dropout": lambda a, n: F.dropout(a[0], n["p"], n["training"]),
}


def t_conv_bn_inference(a, n):
    with torch.no_grad():
        y = F.batch_norm(F.conv2d(a[0], a[1], None, **conv_kw(n)), a[2], a[3], a[4], a[5], training=False,
                         eps=n.get("eps", 1e-5))
        if len(a) > 6:
            y = y + a[6]
        return torch.relu(y) if n.get("relu") else y


def nll_loss(logp, target, smoothing):
    """minidl's nll_loss with label smoothing: cross_entropy's smoothing applied to given log-probabilities (PyTorch's
    F.nll_loss has no smoothing argument; F.cross_entropy applies log_softmax first)."""
    nll = F.nll_loss(logp, target)
    if smoothing == 0.0:
        return nll
    return (1 - smoothing) * nll - smoothing * logp.mean(dim=1).mean()


# More kink ops (quant_vs_torch.py's): name -> function(inputs, node) returning the gap as kink_gap does.
KINK_GAPS = {}


def kink_gap(name, inputs, node):
    """How close (relative to the input's scale) a kink op's input comes to its kink without sitting exactly on it;
    math.inf for smooth ops."""
    if name in KINK_GAPS:
        return KINK_GAPS[name](inputs, node)
    x = inputs[0].detach()
    if x.numel() == 0:
        return math.inf
    scale = max(1.0, float(x.abs().max()))

    def nearest(d):
        d = d.abs().flatten()
        d = d[d > 0]
        return float(d.min()) / scale if d.numel() else math.inf

    if name in ("relu", "abs"):
        return nearest(x)
    if name == "clamp":
        return min(nearest(x - node["lo"]), nearest(x - node["hi"]))
    if name in ("amax", "max_pool2d"):
        if name == "amax":
            if x.dim() == 0:
                return math.inf
            dims = reduce_dims(x, node)
            keep = [d for d in range(x.dim()) if d not in [dd % x.dim() for dd in dims]]
            groups = x.permute(keep + [d % x.dim() for d in dims]).reshape(math.prod([x.shape[d] for d in keep]), -1)
        else:
            kw = pool_kw(node)
            padded = F.pad(x, (kw["padding"][1], kw["padding"][1], kw["padding"][0], kw["padding"][0]),
                           value=-math.inf)
            n, c = padded.shape[:2]
            cols = F.unfold(padded.reshape(n * c, 1, *padded.shape[2:]), kw["kernel_size"], stride=kw["stride"])
            groups = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        top = groups.max(dim=1, keepdim=True).values
        below = torch.where(groups < top, top - groups, torch.full_like(groups, math.inf))
        below = below[torch.isfinite(below)]
        return float(below.min()) / scale if below.numel() else math.inf
    return math.inf


def run_torch(program, dtype, gaps=None):
    """Runs `program` in PyTorch in `dtype`; returns (values per node, grads per leaf, leaves after). With a `gaps`
    list, appends each kink op's kink_gap."""
    leaves = []
    for l in program["leaves"]:
        if l.get("int64"):
            leaves.append(torch.tensor(l["values"], dtype=torch.int64).reshape(l["shape"]))
            continue
        t = torch.tensor(l["values"], dtype=torch.float64).reshape(l["shape"]).to(dtype)
        leaves.append(t.requires_grad_(bool(l.get("requires_grad"))))
    v = list(leaves)
    for n in program["nodes"]:
        a = [v[i] for i in n["in"]]
        if gaps is not None:
            gaps.append(kink_gap(n["op"], a, n))
        v.append(OPS[n["op"]](a, n))
    loss = None
    for term in program["loss"]:
        t = v[term["id"]]
        w = torch.tensor(term["weights"], dtype=torch.float64).reshape(t.shape).to(dtype)
        s = (t * w).sum()
        loss = s if loss is None else loss + s
    if loss is not None and loss.requires_grad:
        loss.backward()
    values = [x.detach().to(torch.float64) for x in v[len(leaves):]]
    grads = [l.grad.detach().to(torch.float64) if l.grad is not None else None for l in leaves]
    after = [l.detach().to(torch.float64) for l in leaves]
    return values, grads, after


# ---- the generator ----


class Generator:
    """Builds one random program, checking every step with PyTorch (float64)."""

    def __init__(self, rng, exclude=()):
        self.rng = rng
        self.exclude = set(exclude)
        self.entries = []  # ("leaf", dict) or ("node", dict), in creation order
        self.values = []  # the torch value of each entry (float64; int64 class targets)

    # -- leaves --
    def new_leaf(self, shape, low=None, high=None, requires_grad=None, positive=False, away_from_zero=False):
        r = self.rng
        vals = []
        # some leaves hold multiples of 0.5 only: exact zeros and ties for relu / abs / clamp / amax / max-pool
        coarse = low is None and not positive and not away_from_zero and r.random() < 0.2
        for _ in range(math.prod(shape)):
            if positive:
                x = r.uniform(0.5, 2.0)
            elif away_from_zero:
                x = r.uniform(0.5, 2.0) * r.choice((-1, 1))
            elif low is not None:
                x = r.uniform(low, high)
            else:
                x = r.gauss(0.0, 1.0)
            vals.append(round(x * 2) / 2 if coarse else x)
        if requires_grad is None:
            requires_grad = r.random() < 0.85
        leaf = {"shape": list(shape), "values": vals, "requires_grad": requires_grad}
        self.entries.append(("leaf", leaf))
        self.values.append(torch.tensor(vals, dtype=torch.float64).reshape(shape))
        return len(self.entries) - 1

    def new_targets(self, n, classes):
        leaf = {"shape": [n], "values": [self.rng.randrange(classes) for _ in range(n)], "int64": True}
        self.entries.append(("leaf", leaf))
        self.values.append(torch.tensor(leaf["values"], dtype=torch.int64))
        return len(self.entries) - 1

    def random_shape(self, rank=None):
        r = self.rng
        if rank is None:
            rank = r.choice((0, 1, 1, 2, 2, 2, 3, 3, 4))
        return [r.randint(1, 5) for _ in range(rank)]

    def image_leaf(self):
        r = self.rng
        return self.new_leaf([r.randint(1, 3), r.randint(1, 4), r.randint(3, 7), r.randint(3, 7)])

    # -- nodes --
    def pick(self, pred=lambda t: True, recent=True):
        ids = [i for i, t in enumerate(self.values) if t.is_floating_point() and pred(t)]
        if not ids:
            return None
        if recent and self.rng.random() < 0.6:
            ids = ids[-3:]
        return self.rng.choice(ids)

    def add_node(self, op, ins, **attrs):
        if op in self.exclude:
            raise ValueError(op + " is excluded")
        node = dict(op=op, **{"in": ins}, **attrs)
        a = [self.values[i] for i in ins]
        out = OPS[op](a, node)  # raises when PyTorch rejects it: the caller tries another
        if not torch.isfinite(out).all() or out.numel() > MAX_NUMEL or tmax(out.abs(), 0.0) > 1e4:
            raise ValueError("out of range")
        self.entries.append(("node", node))
        self.values.append(out.detach())
        return len(self.entries) - 1

    def broadcast_partner(self, shape):
        """A shape that broadcasts with `shape`: some leading dims dropped, some dims set to 1, sometimes a new one."""
        r = self.rng
        s = list(shape[r.randint(0, len(shape)):]) if shape and r.random() < 0.4 else list(shape)
        s = [1 if r.random() < 0.3 else d for d in s]
        if r.random() < 0.15 and len(s) < 4:
            s = [r.randint(1, 3)] + s
        return s

    def step(self):
        r = self.rng
        kind = r.choices(
            ["binary", "scalar", "unary", "reduce", "view", "matmul", "linear", "cat", "softmax", "loss", "conv",
             "pool", "bn", "inference"],
            weights=[14, 6, 12, 8, 16, 4, 3, 4, 3, 3, 4, 4, 4, 2])[0]
        getattr(self, "gen_" + kind)()

    def gen_binary(self):
        r = self.rng
        op = r.choice(["add", "sub", "mul", "div", "pow_tensor"])
        a = self.pick()
        if op == "pow_tensor":
            if tmin(self.values[a], 1.0) <= 0.2 or tmax(self.values[a], 0.0) > 4:
                a = self.new_leaf(self.broadcast_partner(list(self.values[a].shape)), positive=True)
            b = self.new_leaf(self.broadcast_partner(list(self.values[a].shape)), -1.5, 1.5)
        elif op == "div":
            b = self.pick(lambda t: t.numel() > 0 and float(t.abs().min()) > 0.2)
            if b is None or r.random() < 0.5:
                b = self.new_leaf(self.broadcast_partner(list(self.values[a].shape)), away_from_zero=True)
        else:
            choice = r.random()
            if choice < 0.15:
                b = a  # x op x: both operands the same tensor
            elif choice < 0.55:
                b = self.pick(recent=False)
            else:
                b = self.new_leaf(self.broadcast_partner(list(self.values[a].shape)))
            if r.random() < 0.5:
                a, b = b, a
        self.add_node(op, [a, b])

    def gen_scalar(self):
        r = self.rng
        op = r.choice(["add_scalar", "rsub_scalar", "mul_scalar", "div_scalar", "rdiv_scalar"])
        s = r.uniform(0.5, 2.0) * r.choice((-1, 1))
        if op == "rdiv_scalar":
            a = self.pick(lambda t: t.numel() > 0 and float(t.abs().min()) > 0.2)
            if a is None:
                a = self.new_leaf(self.random_shape(), away_from_zero=True)
        else:
            a = self.pick()
        self.add_node(op, [a], s=s)

    def gen_unary(self):
        r = self.rng
        op = r.choice(["neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "pow", "clamp"])
        attrs = {}
        if op in ("log", "sqrt"):
            a = self.pick(lambda t: t.numel() > 0 and float(t.min()) > 0.2)
            if a is None:
                a = self.new_leaf(self.random_shape(), positive=True)
        elif op == "pow":
            e = r.choice([2.0, 3.0, 0.0, 1.0, -1.0, 0.5, 1.5, -2.0])
            attrs["e"] = e
            if e in (2.0, 3.0, 0.0, 1.0):
                a = self.pick()
            else:
                a = self.pick(lambda t: t.numel() > 0 and float(t.min()) > 0.2)
                if a is None:
                    a = self.new_leaf(self.random_shape(), positive=True)
        elif op == "exp":
            a = self.pick(lambda t: tmax(t, 0.0) < 4)
        else:
            a = self.pick()
        if op == "clamp":
            # bounds between the values, or on them: then the input is a new leaf, whose values both sides hold
            # exactly (an op's result may differ in its last bits)
            on = r.random() < 0.35
            if on:
                a = self.new_leaf(self.random_shape(r.randint(1, 3)))
            flat = sorted(self.values[a].flatten().tolist()) or [0.0]
            lo = flat[len(flat) // 4] - (0.0 if on else 0.05)
            attrs["lo"], attrs["hi"] = lo, max(flat[(3 * len(flat)) // 4] + (0.0 if on else 0.05), lo)
        self.add_node(op, [a], **attrs)

    def gen_reduce(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() > 0) or self.new_leaf(self.random_shape(r.randint(1, 3)))
        rank = self.values[a].dim()
        dims = sorted(r.sample(range(rank), r.randint(0, rank)))
        dims = [d - rank if r.random() < 0.3 else d for d in dims]
        attrs = {"dims": dims, "keepdim": r.random() < 0.4}
        self.add_node(r.choice(["sum", "mean", "amax"]), [a], **attrs)

    def gen_view(self):
        r = self.rng
        a = self.pick()
        t = self.values[a]
        rank = t.dim()
        op = r.choice(["reshape", "view", "permute", "transpose", "narrow", "slice", "select", "expand", "squeeze",
                       "unsqueeze", "flatten", "contiguous", "clone"])
        if op in ("reshape", "view"):
            n, shape = t.numel(), []
            while n > 1 and len(shape) < 3:
                f = r.choice([d for d in range(1, n + 1) if n % d == 0])
                shape.append(f)
                n //= f
            shape.append(n)
            r.shuffle(shape)
            if r.random() < 0.3:
                shape[r.randrange(len(shape))] = -1
            self.add_node(op, [a], shape=shape)
        elif op == "permute":
            dims = list(range(rank))
            r.shuffle(dims)
            self.add_node(op, [a], dims=[d - rank if r.random() < 0.2 else d for d in dims])
        elif op == "transpose" and rank >= 1:
            self.add_node(op, [a], d0=r.randrange(-rank, rank), d1=r.randrange(-rank, rank))
        elif op in ("narrow", "slice", "select") and rank >= 1:
            dim = r.randrange(rank)
            size = t.shape[dim]
            start = r.randrange(size)
            if op == "narrow":
                self.add_node(op, [a], dim=dim, start=start, length=r.randint(1, size - start))
            elif op == "slice":
                # Python's bounds: negative ones count from the end, an end past the size is clamped
                end = r.randint(start + 1, size + 2)
                self.add_node(op, [a], dim=dim - rank if r.random() < 0.3 else dim,
                              start=start - size if r.random() < 0.3 else start,
                              end=end - size if end < size and r.random() < 0.3 else end, step=r.randint(1, 3))
            else:
                self.add_node(op, [a], dim=dim, index=start - size if r.random() < 0.3 else start)
        elif op == "expand":
            shape = [r.randint(1, 3) if d == 1 else d for d in t.shape]
            if r.random() < 0.4 and rank < 4:
                shape = [r.randint(1, 3)] + shape
            if r.random() < 0.3 and shape:
                shape[-1] = -1
            self.add_node(op, [a], shape=shape)
        elif op == "squeeze" and rank >= 1:
            ones = [d for d in range(rank) if t.shape[d] == 1]
            self.add_node(op, [a], dim=r.choice(ones) if ones and r.random() < 0.8 else r.randrange(rank))
        elif op == "unsqueeze":
            self.add_node(op, [a], dim=r.randint(-rank - 1, rank))
        elif op == "flatten":
            lo = r.randint(-rank, max(rank - 1, 0)) if rank else 0
            start = lo % rank if rank else 0
            self.add_node(op, [a], start=lo, end=r.randint(start, max(rank - 1, 0)) if rank else 0)
        elif op in ("contiguous", "clone"):
            self.add_node(op, [a])
        else:
            raise ValueError("no view for rank 0")

    def gen_matmul(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() in (2, 3))
        if a is None:
            a = self.new_leaf(self.random_shape(r.choice((2, 3))))
        s = list(self.values[a].shape)
        n = r.randint(1, 5)
        b_shape = ([s[0]] if len(s) == 3 and r.random() < 0.6 else []) + [s[-1], n]
        b = self.new_leaf(b_shape)
        if r.random() < 0.3:  # the other operand transposed: a strided view
            b = self.add_node("transpose", [self.new_leaf([n, s[-1]] if len(b_shape) == 2 else [s[0], n, s[-1]])],
                              d0=-1, d1=-2)
        self.add_node("matmul", [a, b])

    def gen_linear(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() == 2) or self.new_leaf(self.random_shape(2))
        out = r.randint(1, 5)
        ins = [a, self.new_leaf([out, self.values[a].shape[1]])]
        if r.random() < 0.6:
            ins.append(self.new_leaf([out]))
        self.add_node("linear", ins)

    def gen_cat(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() > 0) or self.new_leaf(self.random_shape(r.randint(1, 3)))
        shape = list(self.values[a].shape)
        dim = r.randrange(len(shape))
        parts = [a]
        for _ in range(r.randint(1, 2)):
            if r.random() < 0.3:
                parts.append(a)
            else:
                s = list(shape)
                s[dim] = r.randint(1, 3)
                parts.append(self.new_leaf(s))
        r.shuffle(parts)
        self.add_node("cat", parts, dim=dim - len(shape) if r.random() < 0.3 else dim)

    def gen_softmax(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() > 0) or self.new_leaf(self.random_shape(2))
        rank = self.values[a].dim()
        self.add_node("log_softmax", [a], dim=r.randrange(-rank, rank))

    def gen_loss(self):
        r = self.rng
        op = r.choice(["cross_entropy", "nll_loss", "mse_loss"])
        if op == "mse_loss":
            a = self.pick()
            b = a if r.random() < 0.1 else self.new_leaf(list(self.values[a].shape))
            self.add_node(op, [a, b])
            return
        a = self.pick(lambda t: t.dim() == 2 and t.shape[1] > 1)
        if a is None:
            a = self.new_leaf([r.randint(1, 5), r.randint(2, 6)])
        if op == "nll_loss" and r.random() < 0.7:
            a = self.add_node("log_softmax", [a], dim=1)
        n, c = self.values[a].shape
        self.add_node(op, [a, self.new_targets(n, c)], label_smoothing=r.choice((0.0, 0.0, 0.1, 0.25)))

    def gen_conv(self):
        r = self.rng
        if r.random() < 0.2:
            # the shape of the cpu backend's Winograd kernels: 3x3, stride 1, channel counts multiples of 8 (16 for
            # its AVX-512 ones), padding 1; its input channels-last, as a convolution's output is there
            c, k_out = r.choice((8, 16)), r.choice((8, 16))
            x = self.new_leaf([r.randint(1, 2), c, r.randint(3, 6), r.randint(3, 6)])
            if r.random() < 0.5:
                x = self.add_node("conv2d", [x, self.new_leaf([c, c, 1, 1])])
            ins = [x, self.new_leaf([k_out, c, 3, 3])] + ([self.new_leaf([k_out])] if r.random() < 0.5 else [])
            self.add_node("conv2d", ins, pad_h=1, pad_w=1)
            return
        a = self.pick(lambda t: t.dim() == 4 and t.shape[2] >= 2 and t.shape[3] >= 2) or self.image_leaf()
        n, c, h, w = self.values[a].shape
        groups = r.choice([g for g in (1, 1, 2, 3, 4) if c % g == 0])
        k_out = groups * r.randint(1, 3)
        kh, kw = r.randint(1, 3), r.randint(1, 3)
        attrs = dict(stride_h=r.randint(1, 2), stride_w=r.randint(1, 2), pad_h=r.randint(0, 2), pad_w=r.randint(0, 2),
                     dilation_h=r.randint(1, 2), dilation_w=r.randint(1, 2), groups=groups)
        ins = [a, self.new_leaf([k_out, c // groups, kh, kw])]
        if r.random() < 0.5:
            ins.append(self.new_leaf([k_out]))
        self.add_node("conv2d", ins, **attrs)

    def gen_pool(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() == 4 and t.shape[2] >= 2 and t.shape[3] >= 2) or self.image_leaf()
        _, _, h, w = self.values[a].shape
        op = r.choice(["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"])
        if op == "adaptive_avg_pool2d":
            self.add_node(op, [a], out_h=r.randint(1, h), out_w=r.randint(1, w))
            return
        kh, kw = r.randint(1, min(3, h)), r.randint(1, min(3, w))
        attrs = dict(kernel_h=kh, kernel_w=kw, stride_h=r.randint(1, 3), stride_w=r.randint(1, 3),
                     pad_h=r.randint(0, kh // 2), pad_w=r.randint(0, kw // 2))
        if op == "avg_pool2d":
            attrs["count_include_pad"] = r.random() < 0.5
        self.add_node(op, [a], **attrs)

    def gen_bn(self):
        r = self.rng
        a = self.pick(lambda t: t.dim() in (2, 4) and t.shape[0] * (t.numel() // max(1, t.shape[0] * t.shape[1])) > 1)
        if a is None:
            a = self.image_leaf() if r.random() < 0.5 else self.new_leaf([r.randint(2, 5), r.randint(1, 4)])
        c = self.values[a].shape[1]
        op = r.choice(["batch_norm", "batch_norm", "batch_norm_relu", "batch_norm_add_relu"])
        ins = [a]
        if op == "batch_norm_add_relu":  # the residual: x's shape, an earlier result or a new leaf
            same = self.pick(lambda t: list(t.shape) == list(self.values[a].shape), recent=False)
            ins.append(same if same is not None and r.random() < 0.5 else self.new_leaf(list(self.values[a].shape)))
        ins += [self.new_leaf([c], requires_grad=False), self.new_leaf([c], 0.5, 2.0, requires_grad=False)]
        if r.random() < 0.7:
            ins += [self.new_leaf([c], 0.5, 1.5), self.new_leaf([c])]
        self.add_node(op, ins, training=r.random() < 0.7, momentum=r.choice((0.1, 0.3)), eps=1e-5)

    def gen_inference(self):
        """conv2d_bn_inference (no gradient through it) or dropout at p 0 or 1, or in eval mode."""
        r = self.rng
        if r.random() < 0.4:
            a = self.pick()
            self.add_node("dropout", [a], **r.choice([dict(p=0.0, training=True), dict(p=1.0, training=True),
                                                      dict(p=0.5, training=False)]))
            return
        a = self.pick(lambda t: t.dim() == 4 and t.shape[2] >= 2 and t.shape[3] >= 2) or self.image_leaf()
        n, c, h, w = self.values[a].shape
        k_out = r.randint(1, 6)
        kh, kw = r.randint(1, 3), r.randint(1, 3)
        attrs = dict(stride_h=r.randint(1, 2), stride_w=r.randint(1, 2), pad_h=r.randint(0, 1), pad_w=r.randint(0, 1),
                     relu=r.random() < 0.5, eps=1e-5)
        ins = [a, self.new_leaf([k_out, c, kh, kw]), self.new_leaf([k_out], requires_grad=False),
               self.new_leaf([k_out], 0.5, 2.0, requires_grad=False), self.new_leaf([k_out], 0.5, 1.5),
               self.new_leaf([k_out])]
        out = F.conv2d(self.values[a], self.values[ins[1]], None, **conv_kw(attrs))
        if r.random() < 0.5:
            ins.append(self.new_leaf(list(out.shape)))
        self.add_node("conv2d_bn_inference", ins, **attrs)

    # -- the program --
    def program(self, steps):
        r = self.rng
        self.new_leaf(self.random_shape())
        if r.random() < 0.3:
            self.image_leaf()
        tries = 0
        while sum(1 for k, _ in self.entries if k == "node") < steps and tries < steps * 20:
            tries += 1
            mark = len(self.entries)
            try:
                self.step()
            except (RuntimeError, ValueError, IndexError):
                del self.entries[mark:]
                del self.values[mark:]
        return self.serialize()

    def serialize(self):
        # leaves first, then nodes, as run_op_program.cpp numbers them
        order = [i for i, (k, _) in enumerate(self.entries) if k == "leaf"]
        order += [i for i, (k, _) in enumerate(self.entries) if k == "node"]
        new_id = {old: new for new, old in enumerate(order)}
        leaves = [self.entries[i][1] for i in order if self.entries[i][0] == "leaf"]
        nodes = []
        for i in order:
            if self.entries[i][0] == "node":
                node = dict(self.entries[i][1])
                node["in"] = [new_id[x] for x in node["in"]]
                nodes.append(node)
        used = {x for n in nodes for x in n["in"]}
        node_ids = [new_id[i] for i in order if self.entries[i][0] == "node"]
        sinks = [i for i in node_ids if i not in used]
        chosen = sorted(set(self.rng.sample(sinks, min(len(sinks), 2)) + node_ids[-1:])) if node_ids else []
        loss = []
        for i in chosen:
            v = self.values[order[i]]
            loss.append({"id": i, "weights": [self.rng.gauss(0.0, 1.0) for _ in range(v.numel())]})
        return {"leaves": leaves, "nodes": nodes, "loss": loss}


# ---- comparison ----


def rel_error(a, b):
    """max |a - b| / max(1, max |b|) over a tensor's finite values (0 for two empty ones); inf where NaN / inf
    positions or signs differ."""
    if a.numel() == 0:
        return 0.0
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb) or not torch.equal(torch.isnan(a), torch.isnan(b)) or \
            not torch.equal(a[torch.isinf(a)], b[torch.isinf(b)]):
        return math.inf
    if not fb.any():
        return 0.0
    return float((a[fb] - b[fb]).abs().max()) / max(1.0, float(b[fb].abs().max()))


def as_f32_inputs(program):
    """The program with its float leaves rounded to float32 (what minidl's float32 run and the references see)."""
    p = json.loads(json.dumps(program))
    for l in p["leaves"]:
        if not l.get("int64"):
            l["values"] = torch.tensor(l["values"], dtype=torch.float64).to(torch.float32).to(torch.float64).tolist()
    for term in p["loss"]:
        term["weights"] = torch.tensor(term["weights"], dtype=torch.float64).to(torch.float32).double().tolist()
    for n in p["nodes"]:  # clamp's bounds as float32 (both sides compare float32 values with them)
        for key in ("lo", "hi"):
            if key in n:
                n[key] = float(torch.tensor(n[key], dtype=torch.float32))
    return p


def compare(program, got, dtype, reference):
    """The mismatches (strings) between minidl's result `got` and PyTorch's float64 `reference` (run_torch's)."""
    if "error" in got:
        return ["minidl threw where PyTorch did not: " + got["error"]]
    ref_values, ref_grads, ref_after = reference
    own = run_torch(program, torch.float32) if dtype == "float32" else None
    problems = []

    def check(what, mine, ref, own32):
        tol = 1e-10 if dtype == "float64" else 2e-4 + 50 * rel_error(own32, ref)
        err = rel_error(mine, ref)
        if not err <= tol:
            problems.append("%s: error %.3g > tolerance %.3g" % (what, err, tol))

    for k, (n, ref) in enumerate(zip(program["nodes"], ref_values)):
        idx = len(program["leaves"]) + k
        if list(got["shapes"][k]) != list(ref.shape):
            problems.append("node %d (%s): shape %s, PyTorch %s" % (idx, n["op"], got["shapes"][k], list(ref.shape)))
            continue
        mine = torch.tensor(got["values"][k], dtype=torch.float64).reshape(ref.shape)
        check("node %d (%s) value" % (idx, n["op"]), mine, ref, own[0][k] if own else None)
    for k, ref in enumerate(ref_grads):
        mine = got["grads"][k]
        if ref is None and mine is None:
            continue
        shape = program["leaves"][k]["shape"]
        # a leaf that requires grad and is not reached: PyTorch leaves None, minidl may leave zeros; both mean 0
        ref = ref if ref is not None else torch.zeros(shape, dtype=torch.float64)
        mine = torch.tensor(mine, dtype=torch.float64).reshape(shape) if mine is not None else torch.zeros_like(ref)
        own32 = own[1][k] if own and own[1][k] is not None else (torch.zeros_like(ref) if own else None)
        check("grad of leaf %d" % k, mine, ref, own32)
    for k, ref in enumerate(ref_after):
        if program["leaves"][k].get("int64"):
            continue
        mine = torch.tensor(got["leaves_after"][k], dtype=torch.float64).reshape(ref.shape)
        check("leaf %d after the run" % k, mine, ref, own[2][k] if own else None)
    return problems


def downstream_of_conv(program, node):
    """Whether node `node` (an index among the nodes) reads, directly or through other nodes, a convolution's output."""
    leaves = len(program["leaves"])
    stack, seen = [node], set()
    while stack:
        k = stack.pop()
        for i in program["nodes"][k]["in"]:
            if i >= leaves and i - leaves not in seen:
                seen.add(i - leaves)
                if program["nodes"][i - leaves]["op"] in ("conv2d", "conv2d_bn_inference"):
                    return True
                stack.append(i - leaves)
    return False


def save_failure(failures_dir, name, program):
    """Writes a failing program to failures_dir/name (run it with minidl_run_op_program); returns the path."""
    os.makedirs(failures_dir, exist_ok=True)
    path = os.path.join(failures_dir, name)
    with open(path, "w") as f:
        json.dump(program, f)
    return path


def run_minidl(program, args, env, work):
    """Runs `program` in minidl_run_op_program; returns (the process, its result, views run as reshape). Exits 77
    (skipped) when the backend is not built in.

    The cpu backend keeps convolution outputs channels-last where PyTorch returns NCHW (README, "Where it differs
    from PyTorch"), and the ops after them keep that layout, so a view that merges channels with pixels has no
    strides there: such a view is run again as reshape (the same values) and counted. A view refused anywhere else
    stays a failure."""
    path, out = os.path.join(work, "program.json"), os.path.join(work, "result.json")
    views = 0
    while True:
        with open(path, "w") as f:
            json.dump(program, f)
        proc = subprocess.run([args.exe, path, out], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            return proc, None, views
        with open(out) as f:
            got = json.load(f)
        if "error" in got and "backend not built into this minidl" in got["error"]:
            print("skipped: " + got["error"])
            sys.exit(77)
        node = got.get("node")
        if ("error" in got and node is not None and program["nodes"][node]["op"] == "view"
                and args.backend == "cpu" and downstream_of_conv(program, node) and "without a copy" in got["error"]):
            program["nodes"][node]["op"] = "reshape"
            views += 1
            continue
        return proc, got, views


# ---- invalid programs: what PyTorch refuses, minidl must refuse with an error, never a crash ----

BAD_INTS = (-100, -7, -1, 0, 7, 100)


def add_leaf(program, shape, rng):
    """Appends a float leaf, renumbering the nodes' inputs (leaves come first); returns its id."""
    leaves = len(program["leaves"])
    for n in program["nodes"]:
        n["in"] = [i + 1 if i >= leaves else i for i in n["in"]]
    for term in program["loss"]:
        term["id"] += 1
    program["leaves"].append({"shape": shape, "values": [rng.gauss(0, 1) for _ in range(math.prod(shape))],
                              "requires_grad": False})
    return leaves


def mutate_node(program, k, rng):
    """Changes one attribute or input of node k at random (towards values PyTorch may refuse)."""
    n = program["nodes"][k]
    ints = [key for key, v in n.items() if isinstance(v, int) and not isinstance(v, bool) and key != "in"]
    lists = [key for key, v in n.items() if isinstance(v, list) and key != "in"]
    floats = [key for key in ("p", "label_smoothing") if key in n]
    choice = rng.random()
    if choice < 0.35 and ints:
        n[rng.choice(ints)] = rng.choice(BAD_INTS)
    elif choice < 0.6 and lists:
        key = rng.choice(lists)
        v = list(n[key])
        how = rng.randrange(4)
        if how == 0 or not v:
            v.append(rng.choice((5, -9, 100)))
        elif how == 1:
            v.append(v[0])  # a repeated dim
        elif how == 2:
            v[rng.randrange(len(v))] += rng.choice((1, 2))
        else:
            v = [-1, -1] + v[2:]
        n[key] = v
    elif choice < 0.7 and floats:
        n[rng.choice(floats)] = rng.choice((-0.5, 1.5))
    else:
        # an input replaced by a leaf of another shape, or class targets out of range
        leaves = program["leaves"]
        targets = [i for i in n["in"] if i < len(leaves) and leaves[i].get("int64")]
        if targets and rng.random() < 0.5:
            leaf = leaves[targets[0]]
            leaf["values"][rng.randrange(len(leaf["values"]))] = rng.choice((-1, 1000))
        else:
            j = rng.randrange(len(n["in"]))
            shape = [rng.randint(1, 5) for _ in range(rng.randint(0, 4))]
            n["in"][j] = add_leaf(program, shape, rng)


def invalid_program(program, rng):
    """A copy of `program` with one node mutated so that PyTorch refuses it, cut after that node (no loss); returns
    (program, node index), or None when 40 tries found nothing PyTorch refuses."""
    if not program["nodes"]:
        return None
    for _ in range(40):
        p = json.loads(json.dumps(program))
        k = rng.randrange(len(p["nodes"]))
        mutate_node(p, k, rng)
        p["nodes"] = p["nodes"][:k + 1]
        p["loss"] = []
        try:
            run_torch(p, torch.float64)
        except Exception:  # noqa: BLE001 (PyTorch raises RuntimeError, IndexError, ValueError, TypeError)
            return p, k
    return None


def run_invalid(args, env, exclude, work, failures_dir):
    """--invalid: every program PyTorch refuses must make minidl throw (minidl::Error, reported as {"error": ...})
    at the same node. Where minidl accepts it, the node is printed: a failure. Fails too when fewer than half of the
    programs gave an invalid one."""
    failed, refused, tried = 0, 0, 0
    for p in range(args.programs):
        rng = random.Random(args.seed * 1000003 + p)
        made = invalid_program(Generator(rng, exclude).program(args.steps), rng)
        if made is None:
            continue
        program, k = made
        tried += 1
        program["dtype"] = args.dtype
        proc, got, _ = run_minidl(program, args, env, work)
        problem = None
        if proc.returncode != 0:
            problem = "minidl_run_op_program died (exit %d): %s" % (proc.returncode, proc.stderr[-1500:])
        else:
            if "error" in got and got.get("node") == k:
                refused += 1
            elif "error" in got:
                problem = "minidl threw at node %s, PyTorch at node %d: %s" % (got.get("node"), k, got["error"])
            else:
                node = program["nodes"][k]
                problem = "minidl accepted node %d, which PyTorch refuses: %s" % (
                    k, json.dumps({key: v for key, v in node.items() if key != "in"}))
        if problem:
            failed += 1
            name = save_failure(failures_dir, "invalid_%d_%d.json" % (args.seed, p), program)
            print("FAIL invalid program %d: %s\n    %s" % (p, name, problem))
    print("%s / %s, invalid programs: %d made, %d refused by minidl at the node PyTorch refuses, %d failed" %
          (args.backend, args.dtype, tried, refused, failed))
    sys.exit(1 if failed or tried < args.programs // 2 else 0)


def check_program(program, args, env, work, min_gap, rng):
    """Runs one generated program (float32: its inputs rounded first) in PyTorch and in minidl, under the program's
    saved-tensor mode (--hooks; "mix" draws one from rng) and compares. Returns None when it is ill-conditioned (a
    kink gap below min_gap: left out), else (the program as run, the problems, views run as reshape)."""
    if args.dtype == "float32":
        program = as_f32_inputs(program)
    gaps = []
    # the reference, also for compare (a view run as reshape gives the same values)
    reference = run_torch(program, torch.float64, gaps)
    if gaps and min(gaps) < min_gap:
        return None
    program["dtype"] = args.dtype
    program["hooks"] = rng.choice(("none", "identity", "mask_bits")) if args.hooks == "mix" else args.hooks
    proc, got, views = run_minidl(program, args, env, work)
    if proc.returncode != 0:
        return program, ["minidl_run_op_program exited with %d: %s" % (proc.returncode, proc.stderr[-2000:])], views
    return program, compare(program, got, args.dtype, reference), views


def report_failure(failures_dir, name, p, program, problems):
    """Writes a failing program out and prints its problems."""
    path = save_failure(failures_dir, name, program)
    print("FAIL program %d (%s; hooks %s): %s" % (p, " ".join(n["op"] for n in program["nodes"]), program["hooks"],
                                                  path))
    for line in problems[:6]:
        print("    " + line)


def program_arguments(description, steps, steps_help, exclude_help, hooks):
    """The arguments of this script and of quant_vs_torch.py."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--exe", required=True, help="minidl_run_op_program")
    ap.add_argument("--backend", default="cpu", choices=["ref", "cpu"])
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--programs", type=int, default=150)
    ap.add_argument("--steps", type=int, default=steps, help=steps_help)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--failures", default=None, help="directory for failing programs (default: a temporary one)")
    ap.add_argument("--exclude", default="", help="comma-separated ops not to generate " + exclude_help)
    ap.add_argument("--hooks", default=hooks, choices=["none", "identity", "mask_bits", "mix"],
                    help="run every program's forward under these saved-tensor hooks, or under a random mode each "
                    "(tests/tools/saved_tensor_modes.h): the gradients must not change")
    return ap


def program_setup(ap, args, ops, prefix):
    """The runner's environment, a work directory, the failures directory and the excluded ops (checked)."""
    env = dict(os.environ, MINIDL_BACKEND=args.backend, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    work = tempfile.mkdtemp(prefix=prefix)
    exclude = [op for op in args.exclude.split(",") if op]
    unknown = sorted(set(exclude) - set(ops))
    if unknown:
        ap.error("--exclude: unknown ops " + ", ".join(unknown))
    return env, work, args.failures or os.path.join(work, "failures"), exclude


def main():
    ap = program_arguments(__doc__.split("\n")[0], 8, "op nodes per program",
                           "(the cpu backend refuses float64 conv2d, conv2d_bn_inference and avg_pool2d: its oneDNN "
                           "kernels are float32 only)", "none")
    ap.add_argument("--invalid", action="store_true", help="programs with one node PyTorch refuses: minidl must "
                    "throw there too (an error, not a crash)")
    args = ap.parse_args()

    env, work, failures_dir, exclude = program_setup(ap, args, OPS, "minidl_diff_")
    # the kink gap below which a program is ill-conditioned: the dtype's rounding, amplified by the program
    min_gap = 1e-9 if args.dtype == "float64" else 3e-5
    if args.invalid:
        run_invalid(args, env, exclude, work, failures_dir)
    ops_seen, modes, skipped, failed, as_reshape = collections.Counter(), collections.Counter(), 0, 0, 0
    for p in range(args.programs):
        rng = random.Random(args.seed * 1000003 + p)
        checked = check_program(Generator(rng, exclude).program(args.steps), args, env, work, min_gap, rng)
        if checked is None:
            skipped += 1
            continue
        program, problems, views = checked
        modes[program["hooks"]] += 1
        as_reshape += views
        ops_seen.update(n["op"] for n in program["nodes"])
        if problems:
            failed += 1
            report_failure(failures_dir, "program_%d_%d.json" % (args.seed, p), p, program, problems)
    missing = sorted(set(OPS) - set(ops_seen) - set(exclude))
    print("%s / %s: %d programs, %d compared, %d left out as ill-conditioned, %d failed; %d views of channels-last "
          "results run as reshape; hooks: %s; ops generated: %s" %
          (args.backend, args.dtype, args.programs, args.programs - skipped, skipped, failed, as_reshape,
           ", ".join("%s %d" % kv for kv in sorted(modes.items())),
           ", ".join("%s %d" % kv for kv in sorted(ops_seen.items()))))
    finish(failed, missing, skipped, args.programs)


def finish(failed, missing, skipped, programs):
    """Exits 1 when a program failed, an op was never generated or more than a quarter were ill-conditioned."""
    if missing:
        print("FAIL: the generator never produced: " + ", ".join(missing))
    if skipped > programs // 4:
        print("FAIL: more than a quarter of the programs were ill-conditioned (%d)" % skipped)
    sys.exit(1 if failed or missing or skipped > programs // 4 else 0)


if __name__ == "__main__":
    main()
