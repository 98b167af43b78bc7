"""PAC shuffle benchmark: vectorised shuffles against the original per-shuffle loop, and
the full significance analysis at the scale of ``sparse analyze``'s defaults.

    python benchmarks/bench_pac.py                 # both parts, 2 threads
    python benchmarks/bench_pac.py --quick         # smaller, for a smoke run

Part 1 takes one utterance's phase and amplitude series (every population x phase band
against every population x amplitude band) and measures, on the same data and the same cut
points, (a) a plain Python loop that builds each shuffle and measures MI and MVL on it, the
way the original SPARSE code worked, and (b) ``shuffled_pac``, all shuffles of all pairs as one
batched FFT computation. Part 2 times ``pac_significance`` on synthetic spike trains shaped
like the ASR encoder's (dt = 2 ms; input waveform, nerve 16 x 80, cortex 3 x 512, and
"all"), 64 utterances of 1.5-3 s, 4 phase x 2 amplitude bands, 1000 shuffles, for the
model set and for a noise-control set of the same shape.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

THREADS = "2"
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, THREADS)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from sparse.analysis.shuffles import (  # noqa: E402
    shuffle_cuts,
    shuffled_pac,
    shuffled_pac_loop,
)
from sparse.analysis.signals import (  # noqa: E402
    AMPLITUDE_BANDS,
    PHASE_BANDS,
    band_filter,
    hilbert_phase_amplitude,
    waveform_to_rate,
    zscore,
)
from sparse.analysis.significance import pac_significance  # noqa: E402

DT_MS = 2.0
FS = 1000.0 / DT_MS
AUDIO_HZ = 16000.0
SHAPES = {"nerve": 16 * 80, "cortex_1": 512, "cortex_2": 512, "cortex_3": 512}


def synth_utterance(rng: np.random.Generator, n_steps: int, noise: bool) -> dict[str, np.ndarray]:
    """One utterance: an input waveform brought to the spike rate, and bool spike trains whose
    per-neuron rates (log-normal, median 8 Hz) follow a shared syllable-rate envelope (none
    for the noise control)."""
    t_audio = np.arange(int(n_steps * DT_MS / 1000 * AUDIO_HZ)) / AUDIO_HZ
    if noise:
        envelope_audio = np.ones_like(t_audio)
    else:
        envelope_audio = 0.6 + 0.4 * np.sin(2 * np.pi * 4.0 * t_audio + rng.uniform(0, 6.3))
    wave = rng.normal(size=t_audio.size) * envelope_audio
    out = {"input": waveform_to_rate(wave, AUDIO_HZ, DT_MS, n_steps=n_steps)}
    t = np.arange(n_steps) * DT_MS / 1000
    drive = np.ones(n_steps) if noise else 0.5 + 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) / 2
    for name, n in SHAPES.items():
        rates = np.exp(rng.normal(np.log(8.0), 1.0, n)).clip(0, 200)
        prob = (drive[:, None] * rates[None, :]) * DT_MS / 1000
        out[name] = rng.random((n_steps, n), dtype=np.float32) < prob
    return out


def make_set(n_utt: int, noise: bool, seed: int,
             lengths: list[int] | None = None) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    if lengths is None:
        lengths = rng.integers(int(1.5 * FS), int(3.0 * FS) + 1, n_utt).tolist()
    pops: dict[str, list[np.ndarray]] = {k: [] for k in ["input", *SHAPES]}
    for n in lengths:
        for k, v in synth_utterance(rng, int(n), noise).items():
            pops[k].append(v)
    return pops


#: timed calls of the vectorised shuffles (their median is reported)
REPEATS = 5


def part1(n_shuffles: int, loop_pairs: int | None, seed: int) -> dict[str, float]:
    """Loop vs vectorised on one 3 s utterance's series: 6 populations x (theta, alpha,
    beta) phase against 6 populations x (low, high gamma) amplitude = 216 pairs."""
    pops = make_set(1, noise=False, seed=seed, lengths=[int(3.0 * FS)])
    signals = []
    for v in pops.values():
        x = v[0]
        signals.append(zscore(x.mean(axis=1, dtype=np.float64) if x.ndim == 2 else x))
    pooled = sum(pops[k][0].sum(axis=1, dtype=np.float64) for k in SHAPES)
    signals.append(zscore(pooled))
    stacked = np.stack(signals)  # (6 populations, T)
    n = stacked.shape[1]
    phase_bands = [b for b in PHASE_BANDS if b != "delta"]  # delta's filter needs 6 s
    phase = np.concatenate([hilbert_phase_amplitude(band_filter(stacked, FS, b))[0]
                            for b in phase_bands])
    amp = np.concatenate([hilbert_phase_amplitude(band_filter(stacked, FS, b))[1]
                          for b in AMPLITUDE_BANDS])
    cuts = shuffle_cuts(n, n_shuffles, seed=seed)
    pairs = [(i, j) for i in range(phase.shape[0]) for j in range(amp.shape[0])]
    # the median of REPEATS calls after a warm-up: one call of well under a second varies by
    # 2-3x from run to run on a shared machine (page faults of its large temporaries)
    fast = shuffled_pac(phase, amp, cuts, workers=int(THREADS))
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        shuffled_pac(phase, amp, cuts, workers=int(THREADS))
        times.append(time.perf_counter() - t0)
    t_fast = float(np.median(times))
    sub = pairs if loop_pairs is None else pairs[:: max(1, len(pairs) // loop_pairs)]
    t0 = time.perf_counter()
    max_diff = 0.0
    for i, j in sub:
        ref = shuffled_pac_loop(phase[i], amp[j], cuts)
        max_diff = max(max_diff, float(np.abs(ref["mi"] - fast["mi"][i, j]).max()),
                       float(np.abs(ref["mvl"] - fast["mvl"][i, j]).max()))
    t_loop_sub = time.perf_counter() - t0
    t_loop = t_loop_sub * len(pairs) / len(sub)
    return {"pairs": len(pairs), "loop_pairs_run": len(sub), "n_steps": n,
            "n_shuffles": n_shuffles, "t_fast": t_fast, "t_loop": t_loop,
            "t_loop_run": t_loop_sub, "max_diff": max_diff}


def part2(n_utt: int, n_shuffles: int, seed: int) -> dict[str, float]:
    t0 = time.perf_counter()
    model = make_set(n_utt, noise=False, seed=seed)
    control = make_set(n_utt, noise=True, seed=seed + 1)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = pac_significance(model, DT_MS, n_shuffles=n_shuffles, seed=seed,
                           workers=int(THREADS))
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    res_c = pac_significance(control, DT_MS, n_shuffles=n_shuffles, seed=seed, stream=1,
                             label="noise control", workers=int(THREADS))
    t_control = time.perf_counter() - t0
    steps = [x.shape[0] for x in model["nerve"]]
    return {"utterances": n_utt, "populations": len(res.params["populations"]),
            "tests_model": len(res), "tests_control": len(res_c),
            "skipped_model": len(res.skipped), "min_s": min(steps) / FS,
            "max_s": max(steps) / FS, "t_data": t_data, "t_model": t_model,
            "t_control": t_control, "n_shuffles": n_shuffles,
            "sig_fdr_model": int(res.significant("mi", "fdr").sum()),
            "sig_fdr_control": int(res_c.significant("mi", "fdr").sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # --surrogates: the flag's former name, still accepted
    ap.add_argument("--shuffles", "--surrogates", dest="shuffles", type=int, default=1000,
                    help="shuffled copies per test (default 1000)")
    ap.add_argument("--utterances", type=int, default=64)
    ap.add_argument("--loop-pairs", type=int, default=None,
                    help="run the loop on this many pairs only and scale (default: all)")
    ap.add_argument("--quick", action="store_true", help="8 utterances, loop on 24 pairs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-full", action="store_true", help="part 1 only")
    args = ap.parse_args(argv)
    if args.quick:
        args.utterances, args.loop_pairs = 8, args.loop_pairs or 24

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores visible, {THREADS} threads; "
          f"python {platform.python_version()}, numpy {np.__version__}")
    r1 = part1(args.shuffles, args.loop_pairs, args.seed)
    ratio = r1["t_loop"] / r1["t_fast"]
    print("\nPart 1: shuffles of one 3 s utterance, every (population, phase band) x "
          "(population, amplitude band)")
    print(f"{'':34}{'time (s)':>12}{'pairs x shuffles / s':>26}")
    work = r1["pairs"] * r1["n_shuffles"]
    loop_note = "" if r1["loop_pairs_run"] == r1["pairs"] else \
        f" (ran {r1['loop_pairs_run']} pairs, scaled)"
    print(f"{'per-shuffle Python loop':34}{r1['t_loop']:>12.2f}{work / r1['t_loop']:>26.0f}"
          f"{loop_note}")
    print(f"{'vectorised (batched FFT)':34}{r1['t_fast']:>12.3f}{work / r1['t_fast']:>26.0f}"
          f"   (median of {REPEATS} calls after a warm-up)")
    print(f"pairs {r1['pairs']}, shuffles {r1['n_shuffles']}, T = {r1['n_steps']} steps; "
          f"speed-up {ratio:.0f}x (pass mark 50x); max |difference| {r1['max_diff']:.1e}")
    ok = ratio >= 50
    if not args.skip_full:
        r2 = part2(args.utterances, args.shuffles, args.seed)
        total = r2["t_model"] + r2["t_control"]
        print(f"\nPart 2: pac_significance, {r2['utterances']} utterances of "
              f"{r2['min_s']:.2f}-{r2['max_s']:.2f} s, {r2['populations']} populations "
              f"(all ordered pairs), 4 x 2 bands, {r2['n_shuffles']} shuffles")
        print(f"{'set':20}{'tests':>10}{'MI sig. (FDR)':>16}{'time (s)':>12}")
        print(f"{'model':20}{r2['tests_model']:>10}{r2['sig_fdr_model']:>16}"
              f"{r2['t_model']:>12.1f}")
        print(f"{'noise control':20}{r2['tests_control']:>10}{r2['sig_fdr_control']:>16}"
              f"{r2['t_control']:>12.1f}")
        print(f"{'total':20}{r2['tests_model'] + r2['tests_control']:>10}{'':>16}"
              f"{total:>12.1f}   (limit 300 s; synthetic data took {r2['t_data']:.1f} s more)")
        print(f"skipped items in the model set: {r2['skipped_model']} (with its edge margins "
              "delta needs 12 s, theta 1.65 s: see the report)")
        ok = ok and total < 300
    print("\nresult:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
