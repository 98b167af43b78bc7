"""Training-step speed and peak memory of the seed's ASR cortex, side by side.

The cortex of the paper's ASR encoder: 3 layers of 512 AdLIF neurons (sfa 0.5, rnn 0.5,
ff 1.0, dropout 0.15) on 1184 binary inputs (the 16 x 74 auditory-nerve spikes), batch 8,
1500 steps (3 s at dt = 2 ms). One training step = forward + backward of a loss over the
output spikes.

Variants (each measured in its own fresh process, so memory figures do not mix):

* ``sparse-fused``     - ``sparse.snn.MultilayeredSpiking``, the default fused time loop;
* ``sparse-reference`` - the same network on the plain-autograd oracle;
* ``snntorch``         - 3 x (Linear + ``snntorch.RLeaky`` all-to-all), LIF only;
* ``norse``            - 3 x ``norse.torch.LIFRecurrent``, LIF only.

snnTorch and Norse have no adaptive neurons, so theirs is the closest layer they offer (a
recurrent LIF layer of the same size); they do less work per step than AdLIF.

Peak memory is the growth of the process's peak resident set during the step, with glibc
told to return large blocks to the system at once (``MALLOC_MMAP_THRESHOLD_``), so that the
figure follows the tensors that are alive rather than the allocator's cache.

Run:  python benchmarks/bench_cortex.py            (all variants, about 3 minutes)
      python benchmarks/bench_cortex.py --steps 300 --variants sparse-fused sparse-reference
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_rss_mb, rss_mb, run_child, write_json  # noqa: E402

VARIANTS = ("sparse-fused", "sparse-reference", "snntorch", "norse")


def _build(variant: str, inputs: int, sizes: list[int], dt: float):
    import torch
    import torch.nn as nn

    if variant.startswith("sparse"):
        from sparse.snn import MultilayeredSpiking

        net = MultilayeredSpiking(
            inputs, sizes, sfa_portions=0.5, rnn_portions=0.5, ff_portions=1.0, dropout=0.15,
            dt=dt, implementation=variant.split("-", 1)[1],
        )

        def step(x_btf):
            return net(x_btf)

        return net, step, "batch_first"

    if variant == "snntorch":
        import snntorch

        class SnnTorchCortex(nn.Module):
            def __init__(self):
                super().__init__()
                fans = [inputs, *sizes[:-1]]
                self.fcs = nn.ModuleList(nn.Linear(i, o) for i, o in zip(fans, sizes, strict=True))
                self.lifs = nn.ModuleList(
                    snntorch.RLeaky(beta=0.9, linear_features=o, all_to_all=True) for o in sizes
                )
                self.drop = nn.Dropout(0.15)

            def forward(self, x):  # (time, batch, features)
                for fc, lif in zip(self.fcs, self.lifs, strict=True):
                    current = fc(self.drop(x))
                    spk, mem = lif.init_rleaky()
                    outs = []
                    for t in range(current.shape[0]):
                        spk, mem = lif(current[t], spk, mem)
                        outs.append(spk)
                    x = torch.stack(outs)
                return x

        net = SnnTorchCortex()
        return net, net, "time_first"

    if variant == "norse":
        import norse.torch as norse

        class NorseCortex(nn.Module):
            def __init__(self):
                super().__init__()
                fans = [inputs, *sizes[:-1]]
                self.layers = nn.ModuleList(
                    norse.LIFRecurrent(i, o, dt=dt * 1e-3) for i, o in zip(fans, sizes, strict=True)
                )
                self.drop = nn.Dropout(0.15)

            def forward(self, x):  # (time, batch, features)
                for layer in self.layers:
                    x, _ = layer(self.drop(x))
                return x

        net = NorseCortex()
        return net, net, "time_first"

    raise ValueError(f"unknown variant {variant!r}")


def _child(args: argparse.Namespace) -> None:
    """Measure one variant in this (fresh) process and print one JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sizes = [args.width] * args.layers
    net, step, layout = _build(args.variant, args.inputs, sizes, args.dt)
    net.train()
    x = (torch.rand(args.batch, args.steps, args.inputs) > 0.9).float()
    if layout == "time_first":
        x = x.transpose(0, 1).contiguous()
    weights = torch.randn(*x.shape[:-1], sizes[-1])

    def train_step():
        net.zero_grad(set_to_none=True)
        out = step(x)
        (out * weights).sum().backward()
        return out

    before = rss_mb()
    t0 = time.perf_counter()
    out = train_step()  # warm-up, also the memory measurement
    first = time.perf_counter() - t0
    peak = peak_rss_mb() - before
    rate = float(out.detach().mean()) / (args.dt * 1e-3)
    del out
    times = [first]
    for _ in range(args.repeats - 1):
        t0 = time.perf_counter()
        train_step()
        times.append(time.perf_counter() - t0)
    times.sort()
    print(json.dumps({
        "variant": args.variant, "step_s": times[len(times) // 2], "first_s": first,
        "peak_mb": peak, "mean_rate_hz": rate, "torch": torch.__version__,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--inputs", type=int, default=1184)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dt", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed steps of the fused variant, median reported (the others, "
                             "minutes per step, run one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    if args.child:
        args.variant = args.child
        _child(args)
        return

    results = []
    for variant in args.variants:
        # the slow variants take minutes per step: their first step is their only one
        repeats = args.repeats if variant == "sparse-fused" else 1
        child_args = ["--child", variant, "--batch", str(args.batch), "--steps",
                      str(args.steps), "--inputs", str(args.inputs), "--width", str(args.width),
                      "--layers", str(args.layers), "--dt", str(args.dt), "--threads",
                      str(args.threads), "--repeats", str(repeats)]
        result = run_child(__file__, child_args, args.threads)
        if result is not None:
            results.append(result)

    by_name = {r["variant"]: r for r in results}
    oracle = by_name.get("sparse-reference")
    fused = by_name.get("sparse-fused")
    print(f"cortex {args.layers} x {args.width}, {args.inputs} inputs, batch {args.batch}, "
          f"{args.steps} steps, {args.threads} threads, torch {results[0]['torch']}")
    print(f"{'variant':<18}{'step (s)':>10}{'peak (MB)':>11}{'rate (Hz)':>11}"
          f"{'speed vs oracle':>17}{'memory vs oracle':>18}{'fused speed-up':>16}")
    for r in results:
        speed = f"{oracle['step_s'] / r['step_s']:.1f}x" if oracle else "-"
        memory = f"{oracle['peak_mb'] / r['peak_mb']:.1f}x lower" if oracle else "-"
        vs_fused = f"{r['step_s'] / fused['step_s']:.1f}x" if fused else "-"
        print(f"{r['variant']:<18}{r['step_s']:>10.2f}{r['peak_mb']:>11.0f}"
              f"{r['mean_rate_hz']:>11.1f}{speed:>17}{memory:>18}{vs_fused:>16}")
    if args.json:
        write_json(args.json, {"config": vars(args), "results": results})


if __name__ == "__main__":
    main()
