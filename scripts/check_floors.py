#!/usr/bin/env python3
"""Checks DESIGN.md's floor rule: a library file includes only its own floor and those below.

Floors: core 1 < tensor 2 < backends 3 < autograd 4 < nn/optim/data/distributed 5 < quant 6 < examples 7. On
floor 5, nn may include autograd; optim may not (optim -> tensor, backends) and data may include only tensor and
core. The floor-5 folders do not include each other, except distributed -> nn (DDP wraps modules). Exits 1 listing every violation.
"""
import os
import re
import sys

FLOOR = {"core": 1, "tensor": 2, "backends": 3, "autograd": 4, "nn": 5, "optim": 5, "data": 5, "distributed": 5,
         "quant": 6,
         "examples": 7}
FORBIDDEN = {"optim": {"autograd"}, "data": {"autograd", "backends"}}
SAME_FLOOR_ALLOWED = {"distributed": {"nn"}}


def violations(root):
    for top in FLOOR:
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for name in files:
                if not name.endswith((".h", ".cpp", ".cu", ".cuh")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = re.match(r'\s*#\s*include\s+[<"]([a-z_]+)/', line)
                        if not m or m.group(1) not in FLOOR:
                            continue
                        target = m.group(1)
                        same_floor_other = (FLOOR[target] == FLOOR[top] and target != top
                                            and target not in SAME_FLOOR_ALLOWED.get(top, ()))
                        if FLOOR[target] > FLOOR[top] or same_floor_other or target in FORBIDDEN.get(top, ()):
                            yield f"{os.path.relpath(path, root)}:{lineno}: {top}/ (floor {FLOOR[top]}) includes {target}/"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    bad = list(violations(root))
    for v in bad:
        print(v)
    print(f"check_floors: {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
