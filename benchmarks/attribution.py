"""Benchmark: PoseIG attributions of all 21 joints, the reference's pattern vs captum vs handlab.

Same model, inputs and target (the default ``heatmap_match``) for all three (SimpleBaseline
ResNet-18 and ResNet-50 at 128 x 128, 21 joints, batch 4, 50 left-Riemann points on the straight
path from a blurred baseline):

(a) the reference's pattern: one forward per point, then one ``backward(retain_graph=True)`` per
    joint, with parameter gradients on (PoseIG-Template's poseig_tools);
(b) captum: one ``IntegratedGradients.attribute`` call per joint (``target=j``), timed with its
    default and with ``internal_batch_size`` (its best setting: points batched per forward);
(c) handlab: :func:`handlab.attribution.poseig` (one forward per point for all joints,
    input-only VJPs, points batched; no pilot here, so the nodes are captum's).

It checks that the three agree (max difference <= 1e-5 of the largest attribution), prints
seconds per image, wall-clock and the process's CPU seconds (on a shared CPU the CPU seconds are
the comparison; on CUDA the wall clock), and the ratios, then, at equal accuracy, how many
points each rule (left Riemann, Gauss-Legendre, Gauss-Legendre with a 64-forward pilot placing
the nodes) needs for a
mean completeness gap (sum |delta| / sum |F(x) - F(x')|) of at most 5 % on the straight path from
black and on PoseIG's 50-fold blur path, and handlab's speed with the cheapest rule against (a)
at the reference's 50 left points (whose own gap is printed next to it).

The models are the trained zoo models ``simplebaseline_r18`` / ``simplebaseline_r50`` (and
``integral_r18`` for ``--accuracy-model integral``) and the targets the hands' true joints, the
setting of chapter 08; ``--random`` uses randomly initialised (seeded) networks instead, whose
flat heatmaps make the likelihood along the path much less smooth. Speed does not depend on the
weights; how many points a rule needs does.

Run: ``python benchmarks/attribution.py`` (the full setting: about an hour on 2 CPU cores) or
``--quick`` (ResNet-18, batch 1, 4 points: about 2 min). On a GPU, the issue's setting (ResNet-50,
21 joints, 50 points, seconds per image): ``python benchmarks/attribution.py --device cuda
--backbones resnet50 --accuracy-backbones`` (timings wait for the queued CUDA kernels).
Taught alongside chapter 08 (``notebooks/08_poseig.py``).
"""

from __future__ import annotations

import argparse
import functools
import platform
import sys
import time
from typing import NamedTuple

import torch
from captum.attr import IntegratedGradients

import handlab.models
from handlab import zoo
from handlab.attribution import JointLikelihood, poseig
from handlab.attribution.engine import DEFAULT_MAX_BATCH
from handlab.attribution.paths import StraightPath, make_baseline, quadrature
from handlab.synth import generate

print = functools.partial(print, flush=True)


def reference_pattern(model, path, target, steps):
    """(a): per point one forward, then J backward(retain_graph=True), parameter grads on."""
    fn = JointLikelihood(model)
    for p in model.parameters():
        p.requires_grad_(True)
    nodes, weights = quadrature("riemann_left", steps)
    b = path.images.shape[0]
    total = path.images.new_zeros(b, target.shape[1], *path.images.shape[1:])
    for s, w in zip(nodes, weights, strict=True):
        pts, vel = path.points(s[None])
        x = pts[0].detach().requires_grad_(True)
        out = fn(x, target)  # (B, J)
        for j in range(out.shape[1]):
            out[:, j].sum().backward(retain_graph=True)
            total[:, j] += x.grad * vel[0] * float(w)
            x.grad = None
    model.zero_grad(set_to_none=True)
    return total


def captum_per_joint(model, images, baseline, target, steps, internal_batch_size=None):
    """(b): one captum IntegratedGradients call per joint."""
    ig = IntegratedGradients(JointLikelihood(model))
    out = [
        ig.attribute(
            images,
            baselines=baseline,
            target=j,
            additional_forward_args=(target,),
            n_steps=steps,
            method="riemann_left",
            internal_batch_size=internal_batch_size,
        )
        for j in range(target.shape[1])
    ]
    return torch.stack(out, dim=1)


def _sync() -> None:
    # CUDA runs asynchronously: wait for the queued kernels before reading the clock
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class Seconds(NamedTuple):
    """Wall-clock and this process's CPU seconds. With one torch thread on a shared machine the
    CPU seconds are the compute each method cost, whatever share of a core it was given; on CUDA
    only the wall clock counts."""

    wall: float
    cpu: float

    def per(self, n: float) -> Seconds:
        return Seconds(self.wall / n, self.cpu / n)

    def text(self) -> str:
        return f"{self.wall:8.3f} s/image wall, {self.cpu:8.3f} s/image CPU"


def speedup(slow: Seconds, fast: Seconds) -> str:
    return f"{slow.wall / fast.wall:5.2f}x wall, {slow.cpu / fast.cpu:5.2f}x CPU"


def timed(fn, repeats=1):
    best, result = Seconds(float("inf"), float("inf")), None
    for _ in range(repeats):
        _sync()
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        _sync()
        best = min(best, Seconds(time.perf_counter() - t0, time.process_time() - c0))
    return best, result


GAP = 0.05  # the accuracy compared: a mean completeness gap of at most 5 %
RULES = {"left": ("riemann_left", 0), "gl": ("gausslegendre", 0), "gl+pilot": ("gausslegendre", 64)}
PATHS = {"straight": {"path": "straight", "baseline": "black"}, "blur": {"path": "blur"}}


def gap(r) -> float:
    return float(r.delta.abs().sum()) / float((r.likelihood - r.baseline_likelihood).abs().sum())


def points_needed(model, images, target, path_kind, rule, candidates, joints):
    """Fewest points for a gap <= 5 %, and the gaps seen."""
    seen = []
    method, pilot = RULES[rule]
    for n in candidates:
        r = poseig(model, images, target, method=method, steps=n, pilot=pilot, joints=joints,
                   **PATHS[path_kind])  # fmt: skip
        seen.append(f"{n}:{gap(r):.2%}")
        if gap(r) <= GAP:
            return n, seen
    return None, seen


ZOO_NAMES = {
    ("simplebaseline", "resnet18"): "simplebaseline_r18",
    ("simplebaseline", "resnet50"): "simplebaseline_r50",
    ("integral", "resnet18"): "integral_r18",
}


def setup(backbone, batch, name="simplebaseline", random=False, device="cpu"):
    torch.manual_seed(0)
    hands = generate(batch, seed=0, size=128)
    images = hands["image"].to(device)
    if random or (name, backbone) not in ZOO_NAMES:
        model = handlab.models.create(name, backbone=backbone, input_size=128).eval().to(device)
        with torch.no_grad():
            target = model.decode(model(images))["keypoints"] + 3.0  # 3 px off: F varies
        return model, images, target
    model = zoo.load(ZOO_NAMES[name, backbone]).to(device)
    return model, images, hands["keypoints"].float().to(device)


def bench_speed(backbone, args):
    model, images, target = setup(backbone, args.batch, random=args.random, device=args.device)
    baseline = make_baseline(images, "blur")
    path = StraightPath(images, baseline)
    b, steps = images.shape[0], args.steps
    kind = "random init" if args.random else "trained (zoo)"
    print(
        f"\n== SimpleBaseline {backbone} ({kind}), 128 px, 21 joints, batch {b}, {steps} points, "
        f"{args.device}"
    )
    # warm-up: one-time oneDNN/autograd set-up costs must not count against the first method
    reference_pattern(model, path, target, 1)
    captum_per_joint(model, images, baseline, target, 2)  # captum needs >= 2 steps
    t_a, a = timed(lambda: reference_pattern(model, path, target, steps))
    t_b, c_ = timed(lambda: captum_per_joint(model, images, baseline, target, steps))
    ibs = args.captum_internal_batch
    t_b2, _ = timed(lambda: captum_per_joint(model, images, baseline, target, steps, ibs))
    run = {"path": path, "method": "riemann_left", "steps": steps, "max_batch": args.max_batch}
    run["pilot"] = 0  # captum's nodes
    t_c, ours = timed(lambda: poseig(model, images, target, **run).attributions)
    t_v, vec = (
        (None, None)
        if args.skip_vectorized
        else timed(lambda: poseig(model, images, target, vectorize=True, **run).attributions)
    )
    # The timed result itself is compared first; if it differs it is recomputed at the other
    # method's batching (on an untrained model the heatmaps are flat, so float32 rounding that
    # depends on the batch size can move the decoder's argmax window).
    scale = float(ours.abs().max())
    batching = {"reference": b, "captum": b * steps, "vectorized": None}
    for name, other in (("reference", a), ("captum", c_), ("vectorized", vec)):
        if other is None:
            continue
        rel = float((other - ours).abs().max()) / scale
        if rel > 1e-5 and batching[name] is not None:
            mine = poseig(model, images, target, **dict(run, max_batch=batching[name]))
            rel = float((other - mine.attributions).abs().max()) / scale
            name = f"{name} (handlab at max_batch={batching[name]})"
        status = "ok" if rel <= 1e-5 else "MISMATCH"
        print(f"  max |{name} - handlab| / max |handlab| = {rel:.2e} ({status})")
    print(f"  (a) reference pattern  {t_a.per(b).text()}")
    print(f"  (b) captum per joint   {t_b.per(b).text()} (default)")
    print(f"  (b) captum per joint   {t_b2.per(b).text()} (internal_batch_size={ibs})")
    print(f"  (c) handlab            {t_c.per(b).text()}")
    if t_v is not None:
        print(f"  (c) handlab vectorize  {t_v.per(b).text()}")
    print(f"  (a)/(c) = {speedup(t_a, t_c)} (bar 2x)")
    print(f"  (b)/(c) = {speedup(t_b, t_c)} captum default (bar 1.5x)")
    print(f"  (b)/(c) = {speedup(t_b2, t_c)} captum internal_batch_size={ibs} (bar 1.5x)")
    return t_a.per(b * steps)  # the reference's seconds per image and point


def bench_accuracy(backbone, args, ref_per_point):
    model, images, target = setup(
        backbone, args.accuracy_batch, args.accuracy_model, random=args.random, device=args.device
    )
    b = images.shape[0]
    if ref_per_point is None:  # no speed run for this backbone: time (a) here, 10 points
        path = StraightPath(images, make_baseline(images, "blur"))
        reference_pattern(model, path, target, 1)  # warm-up
        t_a, _ = timed(lambda: reference_pattern(model, path, target, 10))
        ref_per_point = t_a.per(b * 10)
        print(f"\n(a) reference pattern on {args.accuracy_model} {backbone}: "
              f"{ref_per_point.per(1 / 50).text()} at 50 points (timed at 10)")  # fmt: skip
    joints = tuple(args.accuracy_joints)
    print(
        f"\n== {args.accuracy_model} {backbone}, batch {b}, joints {list(joints)}: "
        f"points for a completeness gap <= {GAP:.0%}"
    )
    for kind in PATHS:
        ref = poseig(model, images, target, method="riemann_left", steps=50, pilot=0,
                     joints=joints, **PATHS[kind])  # fmt: skip
        print(f"  {kind:8s} the reference's 50 left points: gap {gap(ref):.2%}")
        need = {}
        for rule in RULES:
            need[rule], seen = points_needed(
                model, images, target, kind, rule, args.candidates, joints
            )
            print(f"  {kind:8s} {rule:9s} {need[rule]}   (points:gap {' '.join(seen)})")
        found = {r: n for r, n in need.items() if n is not None}
        if not found:
            continue
        cheapest = min(found, key=lambda r: (found[r], r))
        method, pilot = RULES[cheapest]
        n = found[cheapest]
        # time all 21 joints, as (a) was timed
        t_g, _ = timed(
            lambda n=n, m=method, p=pilot, kind=kind: poseig(
                model, images, target, method=m, steps=n, pilot=p, **PATHS[kind]
            )
        )
        print(
            f"  {kind}: handlab {cheapest} ({n} points, 21 joints) {t_g.per(b).text()}; vs (a) "
            f"at 50 left points: {speedup(ref_per_point.per(1 / 50), t_g.per(b))} (aim 5x)"
        )


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
    except OSError:
        return "CPU unknown"
    return f"{names[0]} x {len(names)} cores" if names else "CPU unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-18, batch 1, 4 points")
    parser.add_argument(
        "--backbones", nargs="*", default=["resnet18", "resnet50"], help="speed runs (none: skip)"
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument(
        "--accuracy-backbones", nargs="*", default=None, help="default: --backbones"
    )
    parser.add_argument("--accuracy-batch", type=int, default=4)
    parser.add_argument(
        "--accuracy-model", default="simplebaseline",
        help="e.g. integral: the same network with a continuous (global soft-argmax) decoder",
    )  # fmt: skip
    parser.add_argument("--candidates", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument(
        "--accuracy-joints", type=int, nargs="+", default=[0, 4, 8, 12, 16, 20],
        help="joints whose gap is measured (the timing explains all 21)",
    )  # fmt: skip
    parser.add_argument("--captum-internal-batch", type=int, default=16)
    parser.add_argument(
        "--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="handlab's images per forward"
    )
    parser.add_argument("--skip-vectorized", action="store_true", help="do not time vectorize=True")
    parser.add_argument("--random", action="store_true", help="untrained networks, not the zoo")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--device", default="cpu", help="where the models run, e.g. cuda (default: cpu)"
    )
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device: expected a device this machine has, got {args.device!r} "
                     "(torch.cuda.is_available() is False)")  # fmt: skip
    if args.quick:
        args.backbones, args.batch, args.steps = ["resnet18"], 1, 4
        args.accuracy_batch, args.candidates = 1, [4, 8]
        args.accuracy_joints = [8]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device.startswith("cuda"):
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}, "
          f"{_cpu_name()}, {platform.system()}")  # fmt: skip
    print("command: python " + " ".join(sys.argv))
    per_point = {bb: bench_speed(bb, args) for bb in args.backbones}
    for bb in args.backbones if args.accuracy_backbones is None else args.accuracy_backbones:
        bench_accuracy(bb, args, per_point.get(bb))


if __name__ == "__main__":
    main()
