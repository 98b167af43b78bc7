"""Training-step speed and peak memory of the paper's ASR cortex, side by side.

The cortex of the paper's ASR encoder: 3 layers of 512 AdLIF neurons (sfa 0.5, rnn 0.5,
ff 1.0, dropout 0.15) on 1184 binary inputs (the 16 x 74 auditory-nerve spikes), batch 8,
1500 steps (3 s at dt = 2 ms). One training step = forward + backward of a loss over the
output spikes.

Variants (each measured in its own fresh process, so memory figures do not mix):

* ``sparse-compiled``  - ``sparse.snn.MultilayeredSpiking`` on the compiled time loop (the
  default where a C++ compiler is available);
* ``sparse-torch``     - the same network on the fused torch loop;
* ``sparse-reference`` - the same network on the plain-autograd oracle;
* ``snntorch``         - 3 x (Linear + ``snntorch.RLeaky`` all-to-all), LIF only;
* ``norse``            - 3 x ``norse.torch.LIFRecurrent``, LIF only;
* ``norse-adaptive``   - 3 x ``norse.torch.LIFAdExRecurrent``, every neuron adaptive: Norse's
  closest peer of AdLIF. Both subtract an adaptation current from the membrane that follows
  the membrane potential (AdLIF's ``a``, AdEx's ``adaptation_current``) and jumps at each spike
  (``b``, ``adaptation_spike``); AdEx adds the exponential spike-onset term. (Norse's
  ``LSNNRecurrent`` adapts the threshold instead, from spikes only.)

The snnTorch and Norse variants run with their libraries' default neuron parameters at the
same dt; they share the sizes, the dropout and the inputs, not the dynamics, and their cost
does not depend on how many spikes there are.

Activity. Speed now depends on how many spikes there are, so the input density is a setting
(``--density``, share of inputs active per step) and, with ``--match-rates``, the layers'
normalisation bias is set (once, in the parent process, by bisection) so that every layer
fires at about that share too, as a trained encoder does: a trained 2 ms encoder fires at
10-25 Hz, 2-5 % of its neurons per step. Without ``--match-rates`` the layers fire as a
freshly initialised network does (about 13 % per step at ``--density 0.1``). The measured
rates are printed.

``--scaling`` replaces the variants by a table of the compiled and torch loops over the
number of steps, the width and the density (each point in a fresh process).

Times are the median of ``--repeats`` steps after a warm-up step, in a process with the
allocator as users get it; the slow variants (the oracle, snnTorch, Norse: minutes a step at
full size) are timed by one step, after a warm-up on the first 10 time steps that pays their
one-time costs. Peak memory is the growth of the peak resident set during one
step, measured in a second process with glibc told to return large blocks to the system at
once (``MALLOC_MMAP_THRESHOLD_``), so that the figure follows the tensors that are alive
rather than the allocator's cache.

Run:  python benchmarks/bench_cortex.py --density 0.03 --match-rates   (trained-model activity)
      python benchmarks/bench_cortex.py                                 (10 % input, fresh rates)
      python benchmarks/bench_cortex.py --scaling
      python benchmarks/bench_cortex.py --density 0.03 --match-rates --steps 200 --threads 1
                                        (against snnTorch and Norse, short; compare cpu_s)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_rss_mb, rss_mb, run_child, write_json  # noqa: E402

VARIANTS = ("sparse-compiled", "sparse-torch", "sparse-reference", "snntorch", "norse",
            "norse-adaptive")
FAST = ("sparse-compiled", "sparse-torch")


def _sparse_cortex(inputs: int, sizes: list[int], dt: float, implementation: str,
                   norm_bias: float):
    import torch

    from sparse.snn import MultilayeredSpiking

    net = MultilayeredSpiking(
        inputs, sizes, sfa_portions=0.5, rnn_portions=0.5, ff_portions=1.0, dropout=0.15,
        dt=dt, implementation=implementation,
    )
    with torch.no_grad():
        for layer in net.layers:
            layer.norm.bias.fill_(norm_bias)
    return net


def _inputs(batch: int, steps: int, inputs: int, density: float):
    import torch

    return (torch.rand(batch, steps, inputs) < density).float()


def calibrate_norm_bias(args: argparse.Namespace) -> float:
    """The normalisation bias at which the layers fire at about ``args.density`` of their
    neurons per step (bisection on the mean rate of a 300-step forward pass)."""
    import torch

    low, high = -4.0, 2.0
    for _ in range(12):
        mid = 0.5 * (low + high)
        torch.manual_seed(0)
        net = _sparse_cortex(args.inputs, [args.width] * args.layers, args.dt, "auto", mid)
        x = _inputs(args.batch, min(args.steps, 300), args.inputs, args.density)
        with torch.no_grad():
            _, spikes = net(x, return_all_spikes=True)
        rate = float(sum(s.mean() for s in spikes) / len(spikes))
        if rate > args.density:
            high = mid
        else:
            low = mid
    return 0.5 * (low + high)


def _build(variant: str, inputs: int, sizes: list[int], dt: float, norm_bias: float):
    import torch
    import torch.nn as nn

    if variant.startswith("sparse"):
        net = _sparse_cortex(inputs, sizes, dt, variant.split("-", 1)[1], norm_bias)

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

    if variant in ("norse", "norse-adaptive"):
        import norse.torch as norse

        # Norse integrates in seconds; its recurrent modules loop over the time-first input
        cell = norse.LIFRecurrent if variant == "norse" else norse.LIFAdExRecurrent

        class NorseCortex(nn.Module):
            def __init__(self):
                super().__init__()
                fans = [inputs, *sizes[:-1]]
                self.layers = nn.ModuleList(
                    cell(i, o, dt=dt * 1e-3) for i, o in zip(fans, sizes, strict=True)
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
    net, step, layout = _build(args.variant, args.inputs, sizes, args.dt, args.norm_bias)
    net.train()
    x = _inputs(args.batch, args.steps, args.inputs, args.density)
    if layout == "time_first":
        x = x.transpose(0, 1).contiguous()
    weights = torch.randn(*x.shape[:-1], sizes[-1])

    def train_step(x=x, weights=weights):
        net.zero_grad(set_to_none=True)
        out = step(x)
        (out * weights).sum().backward()
        return out

    if args.repeats == 1:
        # A variant timed by one step pays its library's one-time costs (Norse's first call
        # took 5 s) on a short input first, so that the step measures the steps alone.
        short = x[:, :10] if layout == "batch_first" else x[:10]
        train_step(short, weights[:, :10] if layout == "batch_first" else weights[:10])
    before = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    out = train_step()  # warm-up, also the memory measurement
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_mb() - before
    if args.measure == "memory":
        print(json.dumps({"variant": args.variant, "peak_mb": peak}))
        return
    output_share = float(out.detach().mean())
    rate = output_share / (args.dt * 1e-3)
    layer_rates = []
    if args.variant.startswith("sparse"):
        with torch.no_grad():
            _, spikes = net(x, return_all_spikes=True)
        layer_rates = [float(s.mean()) for s in spikes]
        loop = net.layers[0].neurons.last_implementation
        expected = args.variant.split("-", 1)[1]
        if loop != expected:
            raise SystemExit(f"{args.variant}: the {loop} loop ran instead")
    del out
    def timed_step() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        train_step()
        return time.perf_counter() - t0, time.process_time() - c0

    # the slow variants run one step only (minutes each): their warm-up is their time
    measured = ([timed_step() for _ in range(args.repeats)] if args.repeats > 1
                else [(first, first_cpu)])
    times = sorted(wall for wall, _ in measured)
    # CPU time of the process (all threads): on 1 thread it hardly moves with other jobs' load,
    # which the wall-clock time does
    cpu_times = sorted(cpu for _, cpu in measured)
    print(json.dumps({
        "variant": args.variant, "step_s": times[len(times) // 2],
        "cpu_s": cpu_times[len(cpu_times) // 2], "first_s": first,
        "mean_rate_hz": rate, "output_spike_share": output_share,
        "layer_spike_share": layer_rates,
        "torch": torch.__version__, "steps": args.steps, "width": args.width,
        "density": args.density,
    }))


def _child_args(args: argparse.Namespace, variant: str, repeats: int, **over) -> list[str]:
    values = {"batch": args.batch, "steps": args.steps, "inputs": args.inputs,
              "width": args.width, "layers": args.layers, "dt": args.dt,
              "threads": args.threads, "repeats": repeats, "density": args.density,
              "norm_bias": args.norm_bias, **over}
    out = ["--child", variant]
    for key, value in values.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def _scaling(args: argparse.Namespace) -> list[dict]:
    """Compiled against torch loop over steps, width and density (rates matched)."""
    points = [(steps, args.width, d) for d in (0.02, 0.1, 0.3) for steps in (500, 1500, 3000)]
    points += [(args.steps, w, d) for d in (0.02, 0.1, 0.3) for w in (256, 1024)]
    rows = []
    print(f"{'steps':>6}{'width':>7}{'density':>9}{'rates (%)':>20}{'compiled (s)':>14}"
          f"{'torch (s)':>11}{'speed-up':>10}")
    for steps, width, density in points:
        point = argparse.Namespace(**{**vars(args), "steps": steps, "width": width,
                                      "density": density})
        bias = calibrate_norm_bias(point)
        results = {}
        for variant in FAST:
            result = run_child(__file__, _child_args(point, variant, args.repeats,
                                                     norm_bias=bias), args.threads,
                               measure_memory=False)
            if result is not None:
                results[variant] = result
        if len(results) < 2:
            continue
        comp, tor = results["sparse-compiled"], results["sparse-torch"]
        rates = "/".join(f"{100 * r:.1f}" for r in comp["layer_spike_share"])
        print(f"{steps:>6}{width:>7}{density:>9.2f}{rates:>20}{comp['step_s']:>14.3f}"
              f"{tor['step_s']:>11.3f}{tor['step_s'] / comp['step_s']:>9.2f}x", flush=True)
        rows.append({"steps": steps, "width": width, "density": density, "norm_bias": bias,
                     "compiled": comp, "torch": tor})
    return rows


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
    parser.add_argument("--density", type=float, default=0.1,
                        help="share of the inputs active per step (default 0.1)")
    parser.add_argument("--match-rates", action="store_true",
                        help="set the layers' normalisation bias so that they fire at about "
                             "--density too (a trained network's activity)")
    parser.add_argument("--norm-bias", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--scaling", action="store_true",
                        help="table of the compiled and torch loops over steps, width and "
                             "density instead of the variants")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed steps of the fast variants after one warm-up step, median "
                             "reported (the others, minutes per step, run one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", default="time", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    if args.child:
        args.variant = args.child
        _child(args)
        return

    if args.scaling:
        print(f"cortex {args.layers} layers, {args.inputs} inputs, batch {args.batch}, "
              f"{args.threads} threads; rates matched to the input density")
        rows = _scaling(args)
        if args.json:
            write_json(args.json, {"config": vars(args), "scaling": rows})
        return

    if args.match_rates:
        args.norm_bias = calibrate_norm_bias(args)
    results = []
    for variant in args.variants:
        # the slow variants take minutes per step: their first step is their only one
        repeats = args.repeats if variant in FAST else 1
        result = run_child(__file__, _child_args(args, variant, repeats), args.threads)
        if result is not None:
            results.append(result)

    by_name = {r["variant"]: r for r in results}
    oracle = by_name.get("sparse-reference")
    torch_loop = by_name.get("sparse-torch")
    print(f"cortex {args.layers} x {args.width}, {args.inputs} inputs, batch {args.batch}, "
          f"{args.steps} steps, {args.threads} threads, input density {args.density:g}"
          f"{', rates matched' if args.match_rates else ''}, torch {results[0]['torch']}")
    print(f"{'variant':<18}{'step (s)':>10}{'CPU (s)':>9}{'peak (MB)':>11}{'spikes/step (%)':>18}"
          f"{'vs oracle':>11}{'memory vs oracle':>18}{'vs torch loop':>15}")
    for r in results:
        speed = f"{oracle['step_s'] / r['step_s']:.1f}x" if oracle else "-"
        memory = f"{oracle['peak_mb'] / r['peak_mb']:.1f}x lower" if oracle else "-"
        vs_torch = f"{torch_loop['step_s'] / r['step_s']:.2f}x" if torch_loop else "-"
        # the other libraries' layers are not read one by one: their output layer only
        shares = ("/".join(f"{100 * s:.1f}" for s in r["layer_spike_share"])
                  or f"-/-/{100 * r['output_spike_share']:.1f}")
        print(f"{r['variant']:<18}{r['step_s']:>10.2f}{r['cpu_s']:>9.2f}{r['peak_mb']:>11.0f}{shares:>18}"
              f"{speed:>11}{memory:>18}{vs_torch:>15}")
    if args.json:
        write_json(args.json, {"config": vars(args), "results": results})


if __name__ == "__main__":
    main()
