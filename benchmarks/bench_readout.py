"""The KWS readout's time loop: blocks of matrix products against the step-by-step oracle.

    python benchmarks/bench_readout.py                  # dt = 10 ms and 2 ms clips, 2 threads
    python benchmarks/bench_readout.py --json readout.json

A ``ReadoutLayer`` of the demo's shape (256 spiking inputs -> 35 keywords, BatchNorm, batch 32,
lengths spread over the batch as in training), forward and backward of the log of the summed
softmax, for a 1 s clip at dt = 10 ms (101 steps) and at dt = 2 ms (501 steps). Both variants
run in the same process, interleaved, on the same inputs; the median of the repeats is
reported. Then the whole KWS encoder's training step (the demo's shape, dt = 10 ms) with each
readout, to show what the readout's share is.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

THREADS = "2"
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, THREADS)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.common import write_json  # noqa: E402
from sparse.encoder_kws import KWSEncoder  # noqa: E402
from sparse.snn import ReadoutLayer, set_implementation  # noqa: E402

IMPLEMENTATIONS = ("fused", "reference")


def _time(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def bench_layer(steps: int, dt_ms: float, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    layer = ReadoutLayer(256, 35, dt=dt_ms, dropout=0.1).train()
    x = (torch.rand(32, steps, 256) < 0.05).float()
    lengths = torch.randint(steps * 6 // 10, steps + 1, (32,))
    lengths[0] = steps

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        layer(x, lengths=lengths).log().sum().backward()

    times: dict[str, list[float]] = {impl: [] for impl in IMPLEMENTATIONS}
    for _ in range(repeats):  # interleaved, so load from other jobs hits both alike
        for impl in IMPLEMENTATIONS:
            set_implementation(layer, impl)
            times[impl] += _time(step, 3)
    return {impl: statistics.median(v) for impl, v in times.items()}


def bench_encoder(repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    encoder = KWSEncoder(num_mel_bins=40, num_classes=35, auditory_channels=[16],
                         auditory_kernel_size=(5, 7), auditory_frequency_stride=[2],
                         cortex_layer_sizes=[256, 256], cortex_sfa_portions=[0.5, 0.5],
                         cortex_rnn_portions=[0.5, 0.5], cortex_feedforward_portions=[1.0, 1.0],
                         dropout=0.1, dt=10.0).train()
    x = torch.randn(32, 101, 40)
    lengths = torch.randint(60, 102, (32,))
    lengths[0] = 101

    def step() -> None:
        encoder.zero_grad(set_to_none=True)
        encoder(x, lengths).log_probs[:, 0].mean().backward()

    times: dict[str, list[float]] = {impl: [] for impl in IMPLEMENTATIONS}
    for _ in range(repeats):
        for impl in IMPLEMENTATIONS:
            encoder.readout.implementation = impl  # the cortex stays fused
            times[impl] += _time(step, 2)
    return {impl: statistics.median(v) for impl, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="write every number here")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(THREADS))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"Python {platform.python_version()}")
    results: dict[str, dict[str, float]] = {}
    print(f"{'case':<42}{'fused (ms)':>12}{'oracle (ms)':>13}{'speed-up':>10}")
    cases = [("readout, 1 s at 10 ms (101 steps)", lambda: bench_layer(101, 10.0, args.repeats)),
             ("readout, 1 s at 2 ms (501 steps)", lambda: bench_layer(501, 2.0, args.repeats)),
             ("KWS encoder training step, 10 ms", lambda: bench_encoder(args.repeats))]
    for name, run in cases:
        r = run()
        results[name] = r
        print(f"{name:<42}{1000 * r['fused']:>12.1f}{1000 * r['reference']:>13.1f}"
              f"{r['reference'] / r['fused']:>9.1f}x", flush=True)
    if args.json:
        write_json(args.json, {"threads": int(THREADS), "seconds": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
