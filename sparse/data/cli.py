"""``sparse synth``: build the synthesised default corpus."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run_synth"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` sub-command to ``sparse``'s parser."""
    p = subparsers.add_parser(
        "synth",
        help="synthesise the default speech corpus (espeak-ng; no download)",
        description=(
            "Synthesise a speech corpus with the bundled espeak-ng engine: keyword clips in the "
            "Speech Commands layout and phone-labelled sentences in the TIMIT layout. A corpus "
            "already built with the same options is found and reused at once."
        ),
    )
    p.add_argument("--tiny", action="store_true", help="the seconds-long test preset")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--out", type=Path, default=None,
        help="corpus folder (default: <$SPARSE_DATA_DIR or ~/.cache/sparse>/synth-<hash>)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    p.add_argument(
        "--force", action="store_true",
        help=(
            "rebuild the corpus in --out even if one is there; only the files an earlier "
            "'sparse synth' wrote there (listed in its contents.tsv) are deleted, after the new "
            "corpus is complete. A corpus folder that also holds anything else (a note, a "
            "folder of your own) is refused, those entries named, and nothing is deleted; a "
            "folder that holds no corpus is never rebuilt. One rebuild of a folder runs at a "
            "time: a second one is refused, naming the first"
        ),
    )
    p.add_argument(
        "--spikes", action="store_true",
        help=("also write the keyword clips as spike trains in the SHD file format "
              "(<corpus>/shd/shd_{train,valid,test}.h5, 700 channels; the encoding is "
              "described in docs/training.md, 'Spike corpora'), for 'task: spikes'"),
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    g = p.add_argument_group("sizes (override the preset; counts are TRAIN VALID TEST)")
    g.add_argument("--timit-speakers", type=int, nargs=3, metavar="N")
    g.add_argument("--sentences-per-speaker", type=int, nargs=3, metavar="N")
    g.add_argument("--keyword-speakers", type=int, nargs=3, metavar="N")
    g.add_argument("--keyword-repeats", type=int)
    g.add_argument("--vocab-size", type=int)
    g.add_argument("--snr-db", type=float, nargs=2, metavar=("MIN", "MAX"))
    g.add_argument("--noise-probability", type=float)
    g.add_argument("--background-seconds", type=float)
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Build (or find) the corpus the arguments describe; print where it is and its numbers."""
    from ..train.lock import LockError
    from .synth import SynthConfig, synthesize_corpus

    config = SynthConfig.tiny(args.seed) if args.tiny else SynthConfig.default(args.seed)
    overrides = {
        name: tuple(value) if isinstance(value, list) else value
        for name in (
            "timit_speakers", "sentences_per_speaker", "keyword_speakers", "keyword_repeats",
            "vocab_size", "snr_db", "noise_probability", "background_seconds",
        )
        if (value := getattr(args, name, None)) is not None
    }
    config = dataclasses.replace(config, **overrides)

    def progress(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r  {done}/{total} tasks", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    try:
        corpus = synthesize_corpus(
            config, root=args.out, workers=args.workers, force=args.force, progress=progress
        )
    except (FileExistsError, ValueError, LockError) as exc:
        print(f"sparse synth: {exc}", file=sys.stderr)
        return 2
    info = corpus.info
    took = time.perf_counter() - t0
    print(f"corpus: {corpus.root}")
    print(f"  TIMIT layout:           {corpus.timit_root}")
    print(f"  Speech Commands layout: {corpus.speech_commands_root}")
    for part in ("timit", "keywords"):
        u, s = info["utterances"][part], info["speakers"][part]
        print(
            f"  {part:9s} utterances train/valid/test = {u['train']}/{u['valid']}/{u['test']}"
            f"  speakers = {s['train']}/{s['valid']}/{s['test']}"
            f"  ({info['hours'][part]:.2f} h)"
        )
    print(
        f"  built in {info['generation_seconds']:.1f} s on {info['workers']} processes, "
        f"{info['size_bytes'] / 2**20:.1f} MiB"
        + ("" if took > 1.0 else f"; found in the cache ({took:.3f} s)")
    )
    if args.spikes:
        _write_spikes(corpus, args.quiet)
    return 0


def _write_spikes(corpus: Any, quiet: bool) -> None:
    """Write (or find) the SHD-format version of the keyword clips; print where and its
    numbers."""
    from .shd import SpikeDataset
    from .spike_encode import encode_synth_corpus

    t0 = time.perf_counter()
    folder = encode_synth_corpus(corpus, verbose=not quiet)
    counts = [len(SpikeDataset(folder, split)) for split in ("train", "valid", "test")]
    print(f"  SHD format (spikes):    {folder}  samples train/valid/test = "
          f"{'/'.join(map(str, counts))}  ({time.perf_counter() - t0:.1f} s)")
