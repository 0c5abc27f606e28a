#!/usr/bin/python3
"""Random optimizer programs, run by minidl's optimizers and schedulers and by torch.optim, compared step by step.

Each program: a few parameters of random shapes in one to three parameter groups with their own hyper-parameters,
SGD (momentum, dampening, Nesterov, weight decay), Adam or AdamW (betas, eps, weight decay, amsgrad), or the
hysteresis optimizer for binary weights (spec/quant.md section 3.3; binary and float groups, classical and
one-step mode, against a transcription of the spec, since PyTorch has none) with random settings, optionally a
learning-rate scheduler (MultiStepLR, CosineAnnealingLR past its T_max, or a linear warm-up,
which PyTorch calls LinearLR), and 1-12 steps of random gradients, some parameters without a gradient on some steps
(skipped, not decayed). minidl runs it through tests/tools/run_optim_program.cpp; PyTorch in the same dtype.
Checked after every step: every parameter and every group's lr; after the last: every state tensor
(momentum_buffer, exp_avg, exp_avg_sq, max_exp_avg_sq, step; the hysteresis optimizer's latent and sign), and
the hysteresis optimizer's count of flipped signs after every step. Error measure max |minidl - torch| / max(1,
max |torch|) per tensor: within 1e-12 in float64, 2e-6 in float32 (one rounding per operation, in either order).

  optim_vs_torch.py --exe BUILD/tests/minidl_run_optim_program --dtype float64 --programs 300 [--seed S]
Exit 0: every program agreed; 1: a mismatch (written to --failures DIR); 77: PyTorch is not installed.
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile

try:
    import torch
except ImportError:
    print("skipped: PyTorch is not installed (scripts/setup torch)")
    sys.exit(77)


# ---- the generator ----


def sgd_options(r):
    o = {"lr": r.choice((0.1, 0.05, 0.01)), "momentum": r.choice((0.0, 0.0, 0.5, 0.9)),
         "weight_decay": r.choice((0.0, 0.0, 1e-4, 0.01))}
    if r.random() < 0.4 and o["momentum"] > 0:
        o["nesterov"] = 1.0  # PyTorch: Nesterov needs momentum and no dampening
    elif r.random() < 0.3:
        o["dampening"] = r.choice((0.1, 0.5))
    return o


def adam_options(r):
    o = {"lr": r.choice((1e-3, 1e-2, 0.05))}
    if r.random() < 0.4:
        o["beta1"] = r.choice((0.0, 0.5, 0.8))
    if r.random() < 0.4:
        o["beta2"] = r.choice((0.9, 0.99))
    if r.random() < 0.3:
        o["eps"] = r.choice((1e-6, 1e-3))
    if r.random() < 0.5:
        o["weight_decay"] = r.choice((0.0, 1e-4, 0.1))
    if r.random() < 0.4:
        o["amsgrad"] = 1.0
    return o


def hysteresis_options(r):
    o = sgd_options(r)
    o["threshold"] = r.choice((0.0, 0.05, 0.1, 0.5))
    o["mode"] = r.choice((0.0, 1.0))
    if r.random() < 0.3:
        o["binary"] = 0.0
    return o


def generate(r):
    n_params = r.randint(1, 4)
    params = []
    for _ in range(n_params):
        shape = [r.randint(1, 4) for _ in range(r.choice((0, 1, 1, 2, 3)))]
        params.append({"shape": shape, "values": [r.gauss(0, 1) for _ in range(math.prod(shape))]})
    optimizer = r.choice(("sgd", "sgd", "adam", "adamw", "hysteresis"))
    options = {"sgd": sgd_options, "hysteresis": hysteresis_options}.get(optimizer, adam_options)
    defaults = options(r)
    order = list(range(n_params))
    r.shuffle(order)
    cuts = sorted(r.sample(range(1, n_params), min(n_params - 1, r.randint(0, 2)))) if n_params > 1 else []
    groups, start = [], 0
    for end in cuts + [n_params]:
        group = {"params": order[start:end], "options": {}}
        if r.random() < 0.5:  # a group's own settings (some keys only)
            own = options(r)
            group["options"] = {k: v for k, v in own.items() if r.random() < 0.6}
        groups.append(group)
        start = end
    if optimizer in ("sgd", "hysteresis"):
        # PyTorch checks Nesterov's conditions on the defaults only, minidl on every group (a clear error): keep
        # the groups valid
        for g in groups:
            eff = dict(defaults, **g["options"])
            if eff.get("nesterov") and (eff.get("momentum", 0.0) <= 0 or eff.get("dampening", 0.0) != 0):
                g["options"]["nesterov"] = 0.0
    n_steps = r.randint(1, 12)
    scheduler = None
    kind = r.choice((None, "multistep", "cosine", "warmup"))
    if kind == "multistep":
        # any order, and a milestone may come twice (PyTorch counts it twice)
        scheduler = {"kind": kind, "milestones": r.choices(range(1, 13), k=r.randint(1, 3)),
                     "gamma": r.choice((0.1, 0.5))}
    elif kind == "cosine":
        scheduler = {"kind": kind, "t_max": r.randint(2, 6), "eta_min": r.choice((0.0, 1e-4))}
    elif kind == "warmup":
        scheduler = {"kind": kind, "warmup": r.randint(1, 6), "start_factor": r.choice((0.1, 0.25, 0.5))}
    steps = []
    for _ in range(n_steps):
        steps.append([None if r.random() < 0.15 else [r.gauss(0, 1) for _ in range(math.prod(p["shape"]))]
                      for p in params])
    return {"params": params, "optimizer": optimizer, "defaults": defaults, "groups": groups,
            "scheduler": scheduler, "steps": steps}


# ---- the reference ----


def torch_group_options(optimizer, opts, defaults):
    """minidl's option names as torch.optim's (betas is one tuple there)."""
    out = {}
    for k, v in opts.items():
        if k in ("beta1", "beta2"):
            continue
        out[k] = bool(v) if k in ("nesterov", "amsgrad") and optimizer != "hysteresis" else v
    if optimizer in ("adam", "adamw") and ("beta1" in opts or "beta2" in opts):
        b1 = opts.get("beta1", defaults.get("beta1", 0.9))
        b2 = opts.get("beta2", defaults.get("beta2", 0.999))
        out["betas"] = (b1, b2)
    return out


class HysteresisRef(torch.optim.Optimizer):
    """spec/quant.md section 3.3 and minidl's decision (optim/hysteresis.h), written from the spec: binary groups
    keep a latent copy V (the initial values) and P = mean|V| * sign, sign(0) = +1, from construction on. A step with
    gradient d at P: d += weight_decay * P; momentum buffer (first step d, then momentum * buf + (1 - dampening) * d;
    Nesterov d + momentum * buf); V -= lr * d; alpha = mean|V|. Classical mode: the sign becomes +1 where V >= t,
    -1 where V <= -t, and stays otherwise; P = alpha * sign. One-step mode (the reference code): V_old and V of one
    sign -> alpha * sign(V); crossing 0 to V >= t -> +alpha, to V <= -t -> -alpha; anything else -> alpha * V.
    Float groups are SGD on P. flips: elements whose sign changed (one-step: sign(P))."""

    def __init__(self, params, **defaults):
        base = dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=0.0, threshold=0.1, binary=1.0,
                    mode=0.0)
        base.update(defaults)
        super().__init__(params, base)
        self.flips = 0
        with torch.no_grad():
            for g in self.param_groups:
                for p in g["params"]:
                    if g["binary"]:
                        v = p.detach().clone()
                        sign = torch.where(v < 0, -torch.ones_like(v), torch.ones_like(v))
                        self.state[p]["latent"] = v
                        self.state[p]["sign"] = sign
                        p.copy_(self.mean_abs(v) * sign)

    @staticmethod
    def mean_abs(v):
        return (v.double().abs().sum() / max(1, v.numel())).to(v.dtype)

    @torch.no_grad()
    def step(self):
        self.flips = 0
        for g in self.param_groups:
            lr, mom, damp, wd = g["lr"], g["momentum"], g["dampening"], g["weight_decay"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                d = p.grad.clone()
                if wd != 0:
                    d = d + wd * p
                if mom != 0:
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = d.clone()
                    else:
                        st["momentum_buffer"] = mom * st["momentum_buffer"] + (1 - damp) * d
                    buf = st["momentum_buffer"]
                    d = d + mom * buf if g["nesterov"] else buf
                if not g["binary"]:
                    p.copy_(p - lr * d)
                    continue
                v_old = st["latent"]
                v = v_old - lr * d
                a = self.mean_abs(v)
                t = g["threshold"]
                if g["mode"]:
                    before = torch.sign(p)
                    same = ((v_old > 0) & (v > 0)) | ((v_old < 0) & (v < 0))
                    up = (v_old < 0) & (v > 0) & (v >= t)
                    down = (v_old > 0) & (v < 0) & (v <= -t)
                    new = torch.where(same, a * torch.sign(v), torch.where(up, a, torch.where(down, -a, a * v)))
                    st["sign"] = torch.sign(new)
                    self.flips += int((st["sign"] != before).sum())
                else:
                    prev = st["sign"]
                    now = torch.where(v >= t, torch.ones_like(v), torch.where(v <= -t, -torch.ones_like(v), prev))
                    self.flips += int((now != prev).sum())
                    st["sign"] = now
                    new = a * now
                st["latent"] = v
                p.copy_(new)


def run_torch(program, dtype):
    params = [torch.tensor(p["values"], dtype=torch.float64).reshape(p["shape"]).to(dtype).requires_grad_()
              for p in program["params"]]
    name, defaults = program["optimizer"], program["defaults"]
    groups = [dict(params=[params[i] for i in g["params"]], **torch_group_options(name, g["options"], defaults))
              for g in program["groups"]]
    d = torch_group_options(name, defaults, {})
    if name == "hysteresis":
        opt = HysteresisRef(groups, **d)
    elif name == "sgd":
        opt = torch.optim.SGD(groups, **d)
    elif name == "adam":
        opt = torch.optim.Adam(groups, **d)
    else:
        opt = torch.optim.AdamW(groups, **d)
    s = program["scheduler"]
    sched = None
    if s and s["kind"] == "multistep":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, s["milestones"], s["gamma"])
    elif s and s["kind"] == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s["t_max"], s["eta_min"])
    elif s and s["kind"] == "warmup":
        sched = torch.optim.lr_scheduler.LinearLR(opt, s["start_factor"], 1.0, s["warmup"])
    out_params, lrs, flips = [], [], []
    for step in program["steps"]:
        for p, g in zip(params, step):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float64).reshape(p.shape).to(dtype)
        opt.step()
        if sched:
            sched.step()
        out_params.append([p.detach().to(torch.float64).clone() for p in params])
        lrs.append([g["lr"] for g in opt.param_groups])
        flips.append(getattr(opt, "flips", None))
    state = []
    for p in params:
        st = opt.state.get(p, {})
        # PyTorch keeps momentum_buffer = None without momentum: no state, as in minidl
        state.append({k: (v.detach().to(torch.float64) if torch.is_tensor(v) else torch.tensor(float(v)))
                      for k, v in st.items() if v is not None})
    return out_params, lrs, state, flips


def rel_error(a, b):
    if a.numel() == 0:
        return 0.0
    return float((a - b).abs().max()) / max(1.0, float(b.abs().max()))


def compare(program, got, dtype):
    if "error" in got:
        return ["minidl threw where PyTorch did not: " + got["error"]]
    ref_params, ref_lrs, ref_state, ref_flips = run_torch(program, dtype)
    tol = 1e-12 if dtype == torch.float64 else 2e-6
    problems = []
    for t, (mine_step, ref_step) in enumerate(zip(got["params"], ref_params)):
        for i, ref in enumerate(ref_step):
            mine = torch.tensor(mine_step[i], dtype=torch.float64).reshape(ref.shape)
            err = rel_error(mine, ref)
            if not err <= tol:
                problems.append("step %d, parameter %d: error %.3g" % (t + 1, i, err))
        for g, (a, b) in enumerate(zip(got["lrs"][t], ref_lrs[t])):
            if not abs(a - b) <= 1e-12 * max(1.0, abs(b)):
                problems.append("step %d, group %d: lr %.17g, PyTorch %.17g" % (t + 1, g, a, b))
        if ref_flips[t] is not None and got["flips"][t] != ref_flips[t]:
            problems.append("step %d: %s signs flipped, the reference %d" % (t + 1, got["flips"][t], ref_flips[t]))
    for i, (mine, ref) in enumerate(zip(got["state"], ref_state)):
        if sorted(mine) != sorted(ref):
            problems.append("parameter %d: state %s, PyTorch %s" % (i, sorted(mine), sorted(ref)))
            continue
        for k, v in ref.items():
            m = torch.tensor(mine[k], dtype=torch.float64)
            if m.numel() != v.numel():
                problems.append("parameter %d: state %s has %d values, PyTorch %d" % (i, k, m.numel(), v.numel()))
                continue
            m = m.reshape(v.shape)
            err = rel_error(m, v)
            if not err <= tol:
                problems.append("parameter %d: state %s error %.3g" % (i, k, err))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--exe", required=True, help="minidl_run_optim_program")
    ap.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    ap.add_argument("--programs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--failures", default=None, help="directory for failing programs (default: a temporary one)")
    args = ap.parse_args()
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    work = tempfile.mkdtemp(prefix="minidl_optim_")
    failures_dir = args.failures or os.path.join(work, "failures")
    failed, kinds = 0, {}
    for p in range(args.programs):
        program = generate(random.Random(args.seed * 1000003 + p))
        program["dtype"] = args.dtype
        if dtype == torch.float32:  # both sides start from the same float32 values
            for q in program["params"]:
                q["values"] = torch.tensor(q["values"], dtype=torch.float32).double().tolist()
            program["steps"] = [[None if g is None else torch.tensor(g, dtype=torch.float32).double().tolist()
                                 for g in step] for step in program["steps"]]
        key = program["optimizer"] + "+" + (program["scheduler"]["kind"] if program["scheduler"] else "none")
        kinds[key] = kinds.get(key, 0) + 1
        path, out = os.path.join(work, "program.json"), os.path.join(work, "result.json")
        with open(path, "w") as f:
            json.dump(program, f)
        proc = subprocess.run([args.exe, path, out], capture_output=True, text=True)
        if proc.returncode != 0:
            problems = ["minidl_run_optim_program exited with %d: %s" % (proc.returncode, proc.stderr[-2000:])]
        else:
            with open(out) as f:
                problems = compare(program, json.load(f), dtype)
        if problems:
            failed += 1
            os.makedirs(failures_dir, exist_ok=True)
            name = os.path.join(failures_dir, "optim_%d_%d.json" % (args.seed, p))
            with open(name, "w") as f:
                json.dump(program, f)
            print("FAIL program %d (%s): %s" % (p, key, name))
            for line in problems[:6]:
                print("    " + line)
    print("%s: %d programs, %d failed; optimizer + scheduler: %s" %
          (args.dtype, args.programs, failed, ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
