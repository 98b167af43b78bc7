"""The paper's ASR encoder: training-step time and peak memory, and streaming real-time factor.

Configuration (the paper's): 80 mels with a 2 ms hop (dt = 2 ms), conv 16 channels 7x7,
cortex 3 x 512 (sfa 0.5, rnn 0.5, ff 1.0), CTC at 25 Hz, MLP 2 x 512, dropout 0.15; 3 s of
audio (1500 frames), batch 8, 2 threads. The weights are a fresh initialisation (a trained
encoder fires less, which only helps the compiled loop).

* ``train-compiled`` / ``train-torch`` / ``train-reference``: one training step (log-mel
  features in, a CTC loss on 40 classes through a linear layer, backward) on the compiled
  loop, the fused torch loop and the autograd oracle, each in a fresh process.
* ``stream-compiled`` / ``stream-torch``: batch 1, 100 ms chunks of audio pushed through the
  streaming filterbank and ``ASREncoder.step`` in eval mode; real-time factor = processing
  time / audio duration.

Run:  python benchmarks/bench_encoder.py
      python benchmarks/bench_encoder.py --variants stream-compiled stream-torch --threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_rss_mb, rss_mb, run_child, write_json  # noqa: E402

VARIANTS = ("train-compiled", "train-torch", "train-reference", "stream-compiled",
            "stream-torch")

PAPER = dict(
    num_mel_bins=80, auditory_channels=[16], auditory_kernel_size=(7, 7),
    auditory_frequency_stride=[1], cortex_layer_sizes=[512] * 3, cortex_sfa_portions=[0.5] * 3,
    cortex_rnn_portions=[0.5] * 3, cortex_feedforward_portions=[1.0] * 3, phoneme_num_layers=2,
    phoneme_features=512, phoneme_ctc_rate_hz=25, dropout=0.15, dt=2.0,
)


def _train_child(implementation: str, args: argparse.Namespace) -> dict:
    import torch
    import torch.nn.functional as F

    from sparse.encoder_asr import ASREncoder
    from sparse.features import LogMelFilterbank

    torch.manual_seed(0)
    encoder = ASREncoder(**PAPER, implementation=implementation).train()
    classifier = torch.nn.Linear(512, 40)
    fbank = LogMelFilterbank(n_mels=80, hop_ms=2.0, win_ms=25.0)
    samples = int(args.seconds * 16000)
    audio = torch.randn(args.batch, samples) * 0.1
    with torch.no_grad():
        feats, frame_lengths = fbank(audio)
    feats = (feats - feats.mean()) / feats.std()
    targets = torch.randint(1, 40, (args.batch, 30))

    def step():
        encoder.zero_grad(set_to_none=True)
        classifier.zero_grad(set_to_none=True)
        out = encoder(feats, frame_lengths)
        log_probs = classifier(out.features).log_softmax(-1).transpose(0, 1)
        loss = F.ctc_loss(log_probs, targets, out.lengths, torch.full((args.batch,), 30))
        loss.backward()
        return out

    before = rss_mb()
    t0 = time.perf_counter()
    out = step()
    first = time.perf_counter() - t0
    peak = peak_rss_mb() - before
    if args.measure == "memory":
        return {"variant": f"train-{implementation}", "peak_mb": peak}
    rates = {k: float(v.mean()) / (PAPER["dt"] * 1e-3) for k, v in out.spikes.items()}
    del out

    def timed_step() -> float:
        t0 = time.perf_counter()
        step()
        return time.perf_counter() - t0

    # the oracle takes minutes per step: its warm-up step is its only one
    repeats = args.repeats if implementation != "reference" else 0
    times = sorted(timed_step() for _ in range(repeats)) or [first]
    return {"variant": f"train-{implementation}", "step_s": times[len(times) // 2],
            "frames": int(feats.shape[1]), "rates_hz": rates}


def _stream_child(implementation: str, args: argparse.Namespace) -> dict:
    import torch

    from sparse.encoder_asr import ASREncoder
    from sparse.features import LogMelFilterbank

    torch.manual_seed(0)
    encoder = ASREncoder(**PAPER, implementation=implementation).eval()
    fbank = LogMelFilterbank(n_mels=80, hop_ms=2.0, win_ms=25.0)
    chunk_samples = int(args.chunk_ms * 16)
    total_samples = int(args.seconds * 16000)
    audio = torch.randn(1, total_samples) * 0.1
    timings = []
    # one untimed stream first: it loads the compiled loop and fills the weight caches, which
    # a long-running stream pays for once
    for repeat in range(args.repeats + 1):
        stream = fbank.stream()
        state = encoder.initial_state(1)
        frames_out = 0
        t0 = time.perf_counter()
        with torch.no_grad():
            for start in range(0, total_samples, chunk_samples):
                feats = stream.push(audio[:, start:start + chunk_samples])
                if feats.shape[1]:
                    out, state = encoder.step(feats, state)
                    frames_out += out.shape[1]
            tail = stream.flush()
            if tail.shape[1]:
                out, state = encoder.step(tail, state)
                frames_out += out.shape[1]
            frames_out += encoder.finish(state).shape[1]
        if repeat > 0:
            timings.append(time.perf_counter() - t0)
    timings.sort()
    elapsed = timings[len(timings) // 2]
    return {"variant": f"stream-{implementation}", "seconds_audio": args.seconds,
            "elapsed_s": elapsed,
            "rtf": elapsed / args.seconds, "chunk_ms": args.chunk_ms, "frames_out": frames_out,
            "chunk_latency_ms": 1000 * elapsed / (total_samples / chunk_samples)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--chunk-ms", type=float, default=100.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repeats (median reported), after one warm-up")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS,
                        default=["train-compiled", "train-torch", "train-reference",
                                 "stream-compiled", "stream-torch"])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--measure", default="time", help=argparse.SUPPRESS)
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args()

    if args.child:
        import json

        import torch

        torch.set_num_threads(args.threads)
        kind, implementation = args.child.split("-", 1)
        if kind == "stream":
            result = _stream_child(implementation, args)
        else:
            result = _train_child(implementation, args)
        print(json.dumps(result))
        return

    common_args = ["--batch", str(args.batch), "--seconds", str(args.seconds), "--chunk-ms",
                   str(args.chunk_ms), "--threads", str(args.threads), "--repeats",
                   str(args.repeats)]
    results = {}
    for variant in args.variants:
        result = run_child(__file__, ["--child", variant, *common_args], args.threads,
                           measure_memory=variant.startswith("train"))
        if result is not None:
            results[variant] = result

    print(f"ASR encoder (paper configuration), {args.seconds:g} s of audio, "
          f"{args.threads} threads")
    ref = results.get("train-reference")
    for name in ("train-compiled", "train-torch", "train-reference"):
        r = results.get(name)
        if r:
            versus = (f", {ref['step_s'] / r['step_s']:.1f}x faster and "
                      f"{ref['peak_mb'] / r['peak_mb']:.1f}x less memory than the oracle"
                      if ref and r is not ref else "")
            print(f"  {name:<16} batch {args.batch}: step {r['step_s']:.2f} s, "
                  f"peak {r['peak_mb']:.0f} MB{versus}")
    if "train-compiled" in results and "train-torch" in results:
        ratio = results["train-torch"]["step_s"] / results["train-compiled"]["step_s"]
        print(f"  compiled vs torch loop: {ratio:.2f}x faster")
    for name in ("stream-compiled", "stream-torch"):
        s = results.get(name)
        if s:
            print(f"  {name:<16} batch 1, {s['chunk_ms']:g} ms chunks: real-time factor "
                  f"{s['rtf']:.3f} ({s['chunk_latency_ms']:.1f} ms per chunk)")
    if args.json:
        write_json(args.json, {"config": vars(args), "results": results})


if __name__ == "__main__":
    main()
