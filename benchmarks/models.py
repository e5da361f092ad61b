"""Training throughput and inference latency of every registered model on this CPU.

Prints one row per model: training samples/s (forward + the model's own loss + backward, batch
16 at 128 px by default) and inference latency (batch 1, eval mode, no grad), both medians of
measured repetitions after one warm-up. The batch is real synthetic data
(``handlab.synth.generate``), so each model reads the field its ``input_kind`` names. A model
whose forward needs something else (e.g. a video clip) is listed as failed, with the reason.

Usage: ``python benchmarks/models.py [--models a b] [--batch-size 16] [--size 128] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from handlab.models import create, list_models
from handlab.synth import generate
from handlab.training.data import model_inputs


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up: allocator, lazy initialisation
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(name: str, batch: dict[str, torch.Tensor], repeat: int) -> tuple[float, float]:
    """(training samples/s, inference ms at batch 1) for model ``name``."""
    torch.manual_seed(0)
    model = create(name)
    inputs = model_inputs(model, batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def train_step() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = model.loss(model(inputs), batch)
        loss.backward()
        optimizer.step()

    step_s = _median_time(train_step, repeat)
    model.eval()
    one = inputs[:1]
    with torch.no_grad():
        infer_s = _median_time(lambda: model(one), max(repeat, 5))
    return inputs.shape[0] / step_s, 1000 * infer_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batch = generate(args.batch_size, seed=0, size=args.size)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
        f"{args.size} px"
    )
    print(f"{'model':<14}{'train samples/s':>17}{'infer ms (B=1)':>16}{'params (M)':>12}")
    for name in args.models or list_models():
        try:
            train, infer = bench(name, batch, args.repeat)
        except (ValueError, TypeError, RuntimeError, KeyError) as err:
            print(f"{name:<14}  failed: {type(err).__name__}: {str(err)[:80]}")
            continue
        params = sum(p.numel() for p in create(name).parameters()) / 1e6
        print(f"{name:<14}{train:>17.1f}{infer:>16.1f}{params:>12.2f}")


if __name__ == "__main__":
    main()
