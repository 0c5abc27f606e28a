#!/usr/bin/python3
"""Random quantization programs, run by minidl and by a PyTorch transcription of spec/quant.md, compared value by
value and gradient by gradient.

The ops: every quantizer of quant/ops.h (weight standardisation, the APoT / PoT / uniform weight and activation
quantizers in both semantics, the fused batch norm + ReLU + quantizer ops, PACT, the integer grid, the binary and
8-bit first/last weights) and QuantConv2d / QuantLinear as layers, alone and after a batch norm + ReLU (the fused
path of a ResNet block), with random schemes, bits, semantics and grad_scale.

The PyTorch side is written from the spec, not from minidl: APoT-I as the reference builds it, from autograd
primitives (divide, clamp, a detached projection, multiply), so its gradients come from PyTorch's autograd;
APoT-C, the 2-bit "calibrated" weights, PACT, the integer grid and the binary and 8-bit weights as custom
autograd Functions with the spec's straight-through rules. Level sets are built as the reference builds them
(float32 levels, section 1.2).

Inputs hit the conventions exactly on purpose: alphas are sometimes powers of two and inputs sit on levels, at 0
and at +-alpha (the clip bounds, where APoT's clamp passes the gradient and PACT's window does not). An input
closer to a rounding threshold (a midpoint between levels, a half-integer of the rounding grid) or to a clip bound
than the dtype's rounding could move it is ill-conditioned, and the program is left out (counted).

Each program also runs under a random saved-tensor mode ("none", "identity", "mask_bits":
saved_tensor_modes.h): quantizers save other tensors under hooks, and masks kept as bits must give the same
gradients.

  quant_vs_torch.py --exe BUILD/tests/minidl_run_op_program --backend cpu --dtype float32 --programs 150 [--seed S]
Exit 0: every program agreed; 1: a mismatch (written to --failures DIR); 77: PyTorch is not installed.
"""

import collections
import itertools
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diff_vs_torch as base  # noqa: E402  (exits 77 without PyTorch)

torch = base.torch
F = base.F

# ---- level sets (spec section 1.2) ----

# the terms each list of build_power_value(B, additive=True) adds to {0}
APOT_TERMS = {
    2: [[2**-1, 2**-2, 2**-3]],
    3: [[2**-1, 2**-2, 2**-4], [2**-3]],
    4: [[2**-1, 2**-3, 2**-5], [2**-2, 2**-4, 2**-6]],
    5: [[2**-1, 2**-3, 2**-6], [2**-2, 2**-4, 2**-7], [2**-5]],
    6: [[2**-1, 2**-4, 2**-7], [2**-2, 2**-5, 2**-8], [2**-3, 2**-6, 2**-9]],
}


def build_power_value(B, additive):
    """The level set L_B, max 1, in float32 as the reference builds it (a float32 tensor times 1 / its max)."""
    if additive:
        values = {sum(c) for c in itertools.product(*[[0.0] + t for t in APOT_TERMS[B]])}
    else:
        values = {0.0} | {2.0**-j for j in range(1, 2**B)}
    v = torch.tensor(sorted(values), dtype=torch.float32)
    return v * (1.0 / torch.max(v))


def grid(scheme, bits, signed):
    """("round", s) for the rounding path, ("levels", magnitudes) for a projection (section 1.2's table)."""
    if scheme == "uniform":
        return "round", (2**(bits - 1) - 1) if signed else (2**bits - 1)
    if signed and bits == 2:
        return "round", 1  # ternary: "for 2-bit weights PoT = uniform"
    return "levels", build_power_value(bits - 1 if signed else bits, scheme == "apot")


def project(v, levels):
    """The nearest level to each v (v >= 0, or below 0 for APoT-C's activations: level 0); ties to the lower one."""
    lv = levels.to(v.dtype)
    return lv[(v.unsqueeze(-1) - lv).abs().argmin(dim=-1)]


# ---- ill-conditioning: how close a quantizer's input comes to where a rounding error would change the result ----

GAPS = None  # a list while kink gaps are collected (gap_of)


def note_gap(d, scale=1.0, exact_ok=False):
    """Records the smallest |d| / scale; exact zeros are conventions the spec fixes when exact_ok (clip bounds),
    ill-conditioned otherwise (midpoints: the spec leaves their ties to the implementation's search)."""
    if GAPS is None:
        return
    d = d.detach().abs().flatten()
    if exact_ok:
        d = d[d > 0]
    if d.numel():
        GAPS.append(float(d.min()) / scale)


def note_rounding(u, scale=1.0):
    note_gap(u - torch.floor(u) - 0.5, scale)


# Level spacings below this are not looked at: a value on the wrong side of such a midpoint moves by less than the
# comparison's tolerance (set for float32 by main; PoT's smallest levels are 2^-30 apart).
MIN_SPACING = 0.0


def note_levels(v, levels):
    """The distance of v to the midpoints between levels, relative to the midpoint (an input's rounding error
    scales with it; at least 1e-3: BN outputs near 0 carry the error of their scale)."""
    lv = levels.to(v.dtype)
    mids = (lv[1:] + lv[:-1]) / 2
    mids = mids[(lv[1:] - lv[:-1]) > MIN_SPACING]
    if v.numel() and mids.numel():
        d = (v.detach().unsqueeze(-1) - mids).abs() / mids.clamp(min=1e-3)
        note_gap(d.min(dim=-1).values)


def quantize_grid(c, kind, g, signed):
    """The projected / rounded c (no gradient), noting its gaps."""
    if kind == "round":
        note_rounding(c.detach() * g)
        return torch.round(c.detach() * g) / g
    if signed:
        note_levels(c.detach().abs(), g)
        return project(c.detach().abs(), g) * c.detach().sign()
    note_levels(c.detach(), g)
    return project(c.detach(), g)


# ---- the quantizers (spec sections 1.4-1.9, 3.2-3.4, 4.1) ----


def grad_scaled(alpha, gs):
    """APoT-I's gradient_scale: the value of alpha, its gradient times gs."""
    if gs == 1.0:
        return alpha
    scaled = alpha * gs
    return (alpha - scaled).detach() + scaled


def straight_through(c, kind, g, signed, a):
    """APoT-I's tail as the reference builds it: the grid point of the clipped c with the identity gradient (a detached
    difference added to c), times alpha."""
    if kind == "round":
        d = c * g
        note_rounding(d)
        return ((d.round() - d).detach() + d) / g * a
    q = quantize_grid(c, kind, g, signed)
    return ((q - c).detach() + c) * a


class UnclippedWeightQuant(torch.autograd.Function):
    """APoT-C's weight quantizer and the 2-bit "calibrated" one of both generations: dL/dw = g everywhere,
    dL/dalpha = sum g * (sign(x) outside [-1, 1], q - x inside)."""

    @staticmethod
    def forward(ctx, w, alpha, kind, g):
        x = w / alpha
        q = quantize_grid(x.clamp(-1, 1), kind, g, True)
        ctx.save_for_backward(x, q)
        ctx.alpha_shape = alpha.shape
        return q * alpha

    @staticmethod
    def backward(ctx, go):
        x, q = ctx.saved_tensors
        ga = (go * torch.where(x.abs() > 1, x.sign(), q - x)).sum().reshape(ctx.alpha_shape)
        return go, ga, None, None


def quantize_weight(w, alpha, scheme, bits, sem, gs):
    kind, g = grid(scheme, bits, True)
    a = grad_scaled(alpha, gs)
    if sem == "APoT-C" or bits == 2:
        note_gap((w / a).abs() - 1, exact_ok=True)  # the clip bounds +-1
        return UnclippedWeightQuant.apply(w, a, kind, g)
    # APoT-I (ImageNet quant_layer.py), from primitives
    data = w / a
    note_gap(data.abs() - 1, exact_ok=True)
    return straight_through(data.clamp(-1, 1), kind, g, True, a)


class ActQuantC(torch.autograd.Function):
    """APoT-C's activation quantizer: c = min(x, 1), dL/dX = g * 1[x <= 1], dL/dalpha = sum g * (1[x > 1] + (q - x)
    * 1[x <= 1])."""

    @staticmethod
    def forward(ctx, X, alpha, kind, g):
        x = X / alpha
        q = quantize_grid(x.clamp(max=1), kind, g, False)
        ctx.save_for_backward(x, q)
        ctx.alpha_shape = alpha.shape
        return q * alpha

    @staticmethod
    def backward(ctx, go):
        x, q = ctx.saved_tensors
        above = x > 1
        ga = (go * torch.where(above, torch.ones_like(x), q - x)).sum().reshape(ctx.alpha_shape)
        return go * (~above), ga, None, None


def quantize_activation(X, alpha, scheme, bits, sem, gs):
    kind, g = grid(scheme, bits, False)
    a = grad_scaled(alpha, gs)
    x = X / a
    note_gap(x - 1, exact_ok=True)
    if sem == "APoT-C":
        return ActQuantC.apply(X, a, kind, g)
    note_gap(x, exact_ok=True)
    return straight_through(x.clamp(0, 1), kind, g, False, a)


class Pact(torch.autograd.Function):
    """Section 3.4's forward, minidl's PACT gradients: dL/dx = g * 1[0 < x < alpha], dL/dalpha = sum g * 1[x >
    alpha]."""

    @staticmethod
    def forward(ctx, x, alpha, k):
        u = x * k / (alpha + 1e-6)
        note_rounding(u, max(1.0, float(u.abs().max())) if u.numel() else 1.0)
        note_gap(x, exact_ok=True)
        note_gap(x - alpha, exact_ok=True)
        ctx.save_for_backward(x, alpha)
        return torch.clamp(torch.round(u), 0, k) * alpha / k

    @staticmethod
    def backward(ctx, go):
        x, alpha = ctx.saved_tensors
        ga = (go * (x > alpha)).sum().reshape(alpha.shape)
        return go * ((x > 0) & (x < alpha)), ga, None


class IntGrid(torch.autograd.Function):
    """Section 3.2 (BinActive): min(max(round(x), 0), k), dL/dx = g * 1[0 < x < k]."""

    @staticmethod
    def forward(ctx, x, k):
        note_rounding(x, max(1.0, float(x.abs().max())) if x.numel() else 1.0)
        note_gap(x, exact_ok=True)
        note_gap(x - k, exact_ok=True)
        ctx.save_for_backward(x)
        ctx.k = k
        return torch.round(x).clamp(0, k)

    @staticmethod
    def backward(ctx, go):
        (x,) = ctx.saved_tensors
        return go * ((x > 0) & (x < ctx.k)), None


class Binarize(torch.autograd.Function):
    """Section 3.3: mean(|w|) * sign(w), identity gradient."""

    @staticmethod
    def forward(ctx, w):
        return w.abs().mean() * w.sign()

    @staticmethod
    def backward(ctx, go):
        return go


class SignedMax8(torch.autograd.Function):
    """Section 1.9: codes round(127 w / m), m = max(w), clamped to [-127, 127] or not, times m / 127; identity
    gradient."""

    @staticmethod
    def forward(ctx, w, clamp):
        m = w.max()
        if not float(m) > 0:
            raise ValueError("no positive weight")  # minidl refuses it (a scale m <= 0); not generated
        u = 127 * w / m
        note_rounding(u, 127.0)
        codes = torch.round(u)
        if clamp:
            codes = codes.clamp(-127, 127)
        return codes * m / 127

    @staticmethod
    def backward(ctx, go):
        return go, None


def weight_standardize(w, detach):
    """Section 1.4: one mean and unbiased std over the tensor; constants for autograd in APoT-C."""
    if w.numel() < 2 or float(w.detach().std()) == 0.0:
        raise ValueError("no standard deviation")  # minidl refuses it (spec: "never NaN"); not generated
    mean, std = w.mean(), w.std()
    if detach:
        mean, std = mean.detach(), std.detach()
    return (w - mean) / std


def bn_relu(a, n):
    """relu(batch_norm(x)) in training (in: x, running_mean, running_var, weight, bias), noting the ReLU's gap."""
    y = torch.relu(F.batch_norm(a[0], a[1], a[2], a[3], a[4], training=True, momentum=n.get("momentum", 0.1),
                                eps=n.get("eps", 1e-5)))
    note_gap(y, max(1.0, float(y.abs().max())) if y.numel() else 1.0, exact_ok=True)
    return y


def layer_weight(w, walpha, n):
    kind, bits, sem = n["weight"], n["weight_bits"], n.get("semantics", "APoT-I")
    if kind == "float":
        return w
    if kind == "binary":
        return Binarize.apply(w)
    if kind == "int8":
        return SignedMax8.apply(w, sem != "APoT-C")
    return quantize_weight(weight_standardize(w, sem == "APoT-C"), walpha, kind, bits, sem, n.get("grad_scale", 1.0))


def layer_input(x, aalpha, n):
    kind, bits = n["act"], n["act_bits"]
    if kind == "float":
        return x
    if kind == "pact":
        return Pact.apply(x, aalpha, 2**bits - 1)
    if kind == "intgrid":
        return IntGrid.apply(x, 2**bits - 1)
    return quantize_activation(x, aalpha, kind, bits, n.get("semantics", "APoT-I"), n.get("grad_scale", 1.0))


def has_act_alpha(n):
    return n["act"] in ("uniform", "pot", "apot", "pact")


def has_weight_alpha(n):
    return n["weight"] in ("uniform", "pot", "apot")


def quant_layer(a, n, first, conv):
    """QuantConv2d / QuantLinear: in[first] the weight, then act_alpha and wgt_alpha where the spec has them."""
    x = a[0] if first == 1 else bn_relu(a, n)
    rest = a[first + 1:]
    aalpha = rest.pop(0) if has_act_alpha(n) else None
    walpha = rest.pop(0) if has_weight_alpha(n) else None
    wq = layer_weight(a[first], walpha, n)
    xq = layer_input(x, aalpha, n)
    if conv:
        return F.conv2d(xq, wq, None, stride=n.get("stride", 1), padding=n.get("padding", 0))
    return F.linear(xq, wq)


QUANT_OPS = {
    "weight_standardize": lambda a, n: weight_standardize(a[0], n["detach_stats"]),
    "quantize_weight": lambda a, n: quantize_weight(a[0], a[1], n["scheme"], n["bits"], n["semantics"],
                                                    n.get("grad_scale", 1.0)),
    "quantize_activation": lambda a, n: quantize_activation(a[0], a[1], n["scheme"], n["bits"], n["semantics"],
                                                            n.get("grad_scale", 1.0)),
    "batch_norm_relu_quantize": lambda a, n: quantize_activation(bn_relu(a, n), a[5], n["scheme"], n["bits"],
                                                                 n["semantics"], n.get("grad_scale", 1.0)),
    "batch_norm_relu_pact": lambda a, n: Pact.apply(bn_relu(a, n), a[5], 2**n["bits"] - 1),
    "signed_max_int8": lambda a, n: SignedMax8.apply(a[0], n["clamp"]),
    "pact": lambda a, n: Pact.apply(a[0], a[1], 2**n["bits"] - 1),
    "int_grid_activation": lambda a, n: IntGrid.apply(a[0], 2**n["bits"] - 1),
    "binarize": lambda a, n: Binarize.apply(a[0]),
    "quant_conv2d": lambda a, n: quant_layer(a, n, 1, True),
    "bn_relu_quant_conv2d": lambda a, n: quant_layer(a, n, 5, True),
    "quant_linear": lambda a, n: quant_layer(a, n, 1, False),
}


def gap_of(name):
    def gap(inputs, node):
        global GAPS
        GAPS = []
        try:
            with torch.no_grad():
                # clones: the batch norms' running statistics stay as they are
                QUANT_OPS[name]([t.detach().clone() for t in inputs], node)
            return min(GAPS) if GAPS else math.inf
        finally:
            GAPS = None
    return gap


for _name, _fn in QUANT_OPS.items():
    base.OPS[_name] = _fn
    base.KINK_GAPS[_name] = gap_of(_name)

# ---- the generator ----

SCHEME_BITS = {"apot": (2, 6), "pot": (2, 5), "uniform": (2, 8)}
SEMANTICS = ("APoT-I", "APoT-C")


class QuantGenerator(base.Generator):
    """Programs of 1-4 quantization nodes, fed by leaves (some on levels and clip bounds) or by each other."""

    def alpha_leaf(self, low=0.3, high=3.0):
        r = self.rng
        a = r.choice((0.5, 1.0, 2.0, 4.0)) if r.random() < 0.4 else r.uniform(low, high)
        return self.new_leaf([], a, a, requires_grad=r.random() < 0.85)

    def on_grid_leaf(self, shape, alpha, signed, scheme, bits, spread=1.5):
        """A leaf whose elements are a mix of random values in [-spread, spread] * alpha (signed) or [-0.5, spread] *
        alpha, and exact points: alpha times a level, 0, +-alpha."""
        r = self.rng
        a = float(self.values[alpha])
        kind, g = grid(scheme, bits, signed)
        points = [0.0, 1.0] + ([-1.0] if signed else [])
        if kind == "levels":
            points += [float(v) for v in g]
        else:
            points += [k / g for k in range(g + 1)]
        exact = r.random() < 0.5
        vals = []
        for _ in range(math.prod(shape)):
            if exact and r.random() < 0.3:
                # the clip bounds (and 0) as often as all the levels together
                p = r.choice(points[:3 if signed else 2]) if r.random() < 0.5 else r.choice(points)
                vals.append(a * p * (r.choice((-1, 1)) if signed else 1))
            else:
                vals.append(r.uniform(-spread if signed else -0.5, spread) * a)
        return self.leaf_of(shape, vals)

    def leaf_of(self, shape, vals):
        """A leaf holding vals (made as new_leaf makes one, so the random stream moves on as it did)."""
        leaf_id = self.new_leaf(shape, 0.0, 0.0)
        self.entries[leaf_id][1]["values"] = vals
        self.values[leaf_id] = torch.tensor(vals, dtype=torch.float64).reshape(shape)
        return leaf_id

    def scheme_bits(self):
        r = self.rng
        scheme = r.choice(("apot", "apot", "pot", "uniform"))
        return scheme, r.randint(*SCHEME_BITS[scheme])

    def random_tensor_shape(self):
        r = self.rng
        return [r.randint(1, 4) for _ in range(r.choice((0, 1, 2, 2, 3, 4)))]

    def bn_inputs(self, channels):
        r = self.rng
        return [self.new_leaf([channels], -0.5, 0.5, requires_grad=False),
                self.new_leaf([channels], 0.5, 2.0, requires_grad=False),
                self.new_leaf([channels], 0.5, 1.5), self.new_leaf([channels], -0.5, 0.5)]

    def quant_input(self, shape=None):
        """A tensor to quantize: a fresh leaf or an earlier node's output."""
        if self.rng.random() < 0.4:
            prev = self.pick(lambda t: t.numel() > 0 and (shape is None or list(t.shape) == shape))
            if prev is not None and self.entries[prev][0] == "node":
                return prev
        return self.new_leaf(shape or self.random_tensor_shape())

    # -- ops --
    def gen_quantizer(self, op, signed):
        r = self.rng
        scheme, bits = self.scheme_bits()
        alpha = self.alpha_leaf()
        x = self.on_grid_leaf(self.random_tensor_shape(), alpha, signed, scheme, bits) if r.random() < 0.7 else \
            self.quant_input()
        self.add_node(op, [x, alpha], scheme=scheme, bits=bits, semantics=r.choice(SEMANTICS),
                      grad_scale=r.choice((1.0, 1.0, 0.25, 3.0)))

    def gen_quantize_weight(self):
        self.gen_quantizer("quantize_weight", True)

    def gen_quantize_activation(self):
        self.gen_quantizer("quantize_activation", False)

    def image_shape(self):
        r = self.rng
        return [r.randint(1, 3), r.choice((1, 2, 3, 5, 8, 16)), r.randint(2, 6), r.randint(2, 6)]

    def gen_bn_quant(self):
        r = self.rng
        shape = self.image_shape()
        x = self.new_leaf(shape)
        bn = self.bn_inputs(shape[1])
        alpha = self.alpha_leaf(0.5, 2.5)
        common = dict(momentum=r.choice((0.1, 0.5)), eps=r.choice((1e-5, 1e-3)))
        if r.random() < 0.3:
            self.add_node("batch_norm_relu_pact", [x] + bn + [alpha], bits=r.randint(1, 8), **common)
        else:
            scheme, bits = self.scheme_bits()
            self.add_node("batch_norm_relu_quantize", [x] + bn + [alpha], scheme=scheme, bits=bits,
                          semantics=r.choice(SEMANTICS), grad_scale=r.choice((1.0, 0.5)), **common)

    def gen_pact(self):
        r = self.rng
        bits = r.randint(1, 8)
        alpha = self.alpha_leaf(0.5, 4.0)
        x = self.on_grid_leaf(self.random_tensor_shape(), alpha, False, "uniform", max(bits, 2))
        self.add_node("pact", [x, alpha], bits=bits)

    def gen_int_grid(self):
        r = self.rng
        bits = r.randint(1, 4)
        k = 2**bits - 1
        shape = self.random_tensor_shape()
        vals = [float(r.randint(-1, k + 1)) if r.random() < 0.3 else r.uniform(-1, k + 1)
                for _ in range(math.prod(shape))]
        self.add_node("int_grid_activation", [self.leaf_of(shape, vals)], bits=bits)

    def gen_weight_other(self):
        r = self.rng
        op = r.choice(("weight_standardize", "signed_max_int8", "binarize"))
        shape = [r.randint(1, 4) for _ in range(r.choice((1, 2, 4)))]
        if math.prod(shape) < 2:
            shape = [2] + shape
        x = self.quant_input(None) if r.random() < 0.3 else self.new_leaf(shape)
        t = self.values[x]
        if op == "weight_standardize" and (t.numel() < 2 or float(t.std()) < 0.05):
            x = self.new_leaf(shape)
        if op == "signed_max_int8":
            if self.values[x].numel() == 0 or float(self.values[x].max()) <= 0.05:
                x = self.new_leaf(shape, 0.1, 1.0)
            self.add_node(op, [x], clamp=r.random() < 0.5)
        elif op == "weight_standardize":
            self.add_node(op, [x], detach_stats=r.random() < 0.5)
        else:
            self.add_node(op, [x])

    def layer_spec(self):
        r = self.rng
        weight = r.choice(("apot", "apot", "pot", "uniform", "binary", "int8", "float"))
        act = r.choice(("apot", "apot", "pot", "uniform", "pact", "intgrid", "float"))
        spec = dict(weight=weight, act=act, semantics=r.choice(SEMANTICS), grad_scale=r.choice((1.0, 1.0, 0.5)))
        spec["weight_bits"] = {"binary": 1, "int8": 8, "float": 32}.get(weight) or \
            r.randint(*SCHEME_BITS[weight])
        spec["act_bits"] = {"float": 32, "pact": r.randint(1, 8), "intgrid": r.randint(1, 4)}.get(act) or \
            r.randint(*SCHEME_BITS[act])
        return spec

    def layer_params(self, spec, weight_shape):
        ins = [self.new_leaf(weight_shape)]
        if has_act_alpha(spec):
            ins.append(self.alpha_leaf(0.5, 3.0) if spec["act"] != "pact" else self.alpha_leaf(0.5, 4.0))
        if has_weight_alpha(spec):
            ins.append(self.alpha_leaf(0.5, 3.0))
        return ins

    def gen_layer(self):
        r = self.rng
        spec = self.layer_spec()
        choice = r.random()
        if choice < 0.2:
            n, c, k = r.randint(1, 4), r.randint(1, 12), r.randint(1, 6)
            x = self.new_leaf([n, c], -0.5, 3.0)
            self.add_node("quant_linear", [x] + self.layer_params(spec, [k, c]), **spec)
            return
        shape = self.image_shape()
        kernel = r.choice((1, 3, 3))
        geometry = dict(stride=r.choice((1, 1, 2)), padding=r.choice((0, 1)) if kernel == 3 else 0)
        w_shape = [r.choice((1, 2, 4, 8, 16)), shape[1], kernel, kernel]
        if choice < 0.55:
            x = self.quant_input(shape) if r.random() < 0.3 else self.new_leaf(shape, -0.5, 3.0)
            self.add_node("quant_conv2d", [x] + self.layer_params(spec, w_shape), **spec, **geometry)
        else:
            x = self.quant_input(shape)
            self.add_node("bn_relu_quant_conv2d", [x] + self.bn_inputs(shape[1]) + self.layer_params(spec, w_shape),
                          momentum=0.1, eps=1e-5, **spec, **geometry)

    def step(self):
        kind = self.rng.choices(
            ["quantize_weight", "quantize_activation", "bn_quant", "pact", "int_grid", "weight_other", "layer"],
            weights=[4, 4, 3, 2, 1, 3, 6])[0]
        getattr(self, "gen_" + kind)()


def main():
    ap = base.program_arguments(__doc__.split("\n")[0], 3, "quantization nodes per program",
                                "(the cpu backend refuses float64 convolutions: quant_conv2d, bn_relu_quant_conv2d)",
                                "mix")
    args = ap.parse_args()
    env, work, failures_dir, exclude = base.program_setup(ap, args, QUANT_OPS, "minidl_quant_diff_")
    global MIN_SPACING
    min_gap = 1e-9 if args.dtype == "float64" else 1e-5
    MIN_SPACING = 0.0 if args.dtype == "float64" else 1e-5
    seen, modes, skipped, failed = collections.Counter(), collections.Counter(), 0, 0
    for p in range(args.programs):
        rng = random.Random(args.seed * 1000003 + p)
        checked = base.check_program(QuantGenerator(rng, exclude).program(args.steps), args, env, work, min_gap, rng)
        if checked is None:
            skipped += 1
            continue
        program, problems, _ = checked
        for n in program["nodes"]:
            if n["op"] in QUANT_OPS:
                seen[n["op"]] += 1
                for key in ("scheme", "semantics", "weight", "act"):
                    if key in n:
                        seen["%s=%s" % (key, n[key])] += 1
        modes[program["hooks"]] += 1
        if problems:
            failed += 1
            base.report_failure(failures_dir, "quant_%d_%d.json" % (args.seed, p), p, program, problems)
    missing = sorted(set(QUANT_OPS) - set(seen) - set(exclude))
    print("%s / %s: %d programs, %d compared, %d left out as ill-conditioned, %d failed; hooks: %s; generated: %s" %
          (args.backend, args.dtype, args.programs, args.programs - skipped, skipped, failed,
           ", ".join("%s %d" % kv for kv in sorted(modes.items())),
           ", ".join("%s %d" % kv for kv in sorted(seen.items()))))
    base.finish(failed, missing, skipped, args.programs)


if __name__ == "__main__":
    main()
