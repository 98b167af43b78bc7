"""``sparse predict CHECKPOINT FILE...``: keywords or phones of audio files (:mod:`sparse.predict`).

Every expected failure (a missing, unreadable or non-checkpoint file, a checkpoint of another
task than ``--task``, an empty, unreadable or multi-channel audio file) is one paragraph on
stderr with exit status 2; files already answered stay printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli import add_checkpoint_command

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``predict`` to ``sparse``'s parser."""
    from .train.tasks import TASKS  # no extra cost: registering "train" imports it too

    p = add_checkpoint_command(
        subparsers, "predict",
        help="run a trained model on audio files: top keywords, or phones with "
        "times",
        description="Run the model of a checkpoint written by 'sparse train' on audio files "
        "(wav, flac, NIST SPHERE...). A keyword-spotting model prints its most probable "
        "keywords with their probabilities; an ASR model prints the phone string (greedy CTC "
        "decoding, as 'sparse evaluate' does) with the start and end time of each phone. "
        "Files are resampled to the model's rate as the training corpus was, and keyword clips "
        "shorter than the training clips (1 s) are zero-padded as those were. --stream feeds "
        "each file in 100 ms chunks through the model's streaming path and prints results as "
        "they arrive, then the real-time factor; its final result equals the whole-file one.",
    )
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="audio files")
    p.add_argument("--top", type=int, default=5, metavar="K",
                   help="keywords to print per file (default 5; keyword spotting)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (a list with one object per file)")
    p.add_argument("--stream", action="store_true",
                   help="feed each file in chunks through the streaming path")
    p.add_argument("--chunk-ms", type=float, default=100.0,
                   help="chunk length for --stream in ms (default 100)")
    p.add_argument("--task", choices=[name for name, t in TASKS.items() if t.audio_input],
                   default=None, help="refuse a checkpoint of the other task")
    p.add_argument("--mono", action="store_true",
                   help="mix files with several channels down to one (refused otherwise)")
    p.add_argument("--device", default="cpu", help="where the model runs (default cpu)")
    p.set_defaults(func=_run_predict)


def _fail(exc: BaseException) -> int:
    print(f"sparse predict: error: {exc}", file=sys.stderr)
    return 2


def _run_predict(args: argparse.Namespace) -> int:
    from .data.audio import AudioError
    from .predict import PredictError, load
    from .train.checkpoints import CheckpointError

    if args.top < 1:
        return _fail(ValueError(f"--top must be at least 1, got {args.top}"))
    if args.chunk_ms <= 0:
        return _fail(ValueError(f"--chunk-ms must be positive, got {args.chunk_ms:g}"))
    results: list[dict[str, Any]] = []
    try:
        model = load(args.checkpoint, task=args.task, device=args.device)
        for path in args.files:
            if args.stream:
                pred, rtf = _stream_file(model, path, args)
            else:
                pred, rtf = model.predict_file(path, top=args.top, mono=args.mono), None
            entry = {"file": str(path), **pred.to_dict()}
            if rtf is not None:
                entry["real_time_factor"] = rtf
            results.append(entry)
            if not args.json:
                _print_result(path, pred, rtf)
    except (PredictError, CheckpointError, AudioError) as exc:
        return _fail(exc)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


def _stream_file(model: Any, path: Path, args: argparse.Namespace) -> tuple[Any, float]:
    """Push ``path`` through a stream in ``--chunk-ms`` chunks, printing updates (unless
    ``--json``); the final prediction and the real-time factor (compute time / audio time)."""
    x = model.read(path, mono=args.mono)
    step = max(1, int(round(args.chunk_ms * model.sample_rate / 1000)))
    if not args.json:
        print(f"{path}  (streaming, {args.chunk_ms:g} ms chunks)")
    printed = 0

    def show(at: float, keywords: list, phones: list) -> None:
        if args.json:
            return
        if keywords:
            print(f"  {at:7.2f} s  " + "  ".join(f"{k.label} {k.probability:.3f}"
                                               for k in keywords))
        for p in phones:
            print(f"  {at:7.2f} s  {p.label}  [{p.start:.2f}-{p.end:.2f}]")

    with model.stream(top=args.top) as stream:
        for start in range(0, len(x), step):
            new = stream.push(x[start:start + step])
            show(new.duration, new.keywords, new.phones)
            printed += len(new.phones)
        final = stream.result()
        show(final.duration, [], final.phones[printed:])  # the phones the end completed
    rtf = stream.seconds_computing / max(final.duration, 1e-9)
    return final, rtf


def _print_result(path: Path, pred: Any, rtf: float | None) -> None:
    from .train.tasks import task_of

    print(f"{path}  ({pred.duration:.2f} s)")
    if task_of(pred.task).is_classifier:
        width = max(len(k.label) for k in pred.keywords)
        for k in pred.keywords:
            print(f"  {k.label:<{width}s}  {k.probability:.3f}")
    else:
        print(f"  phones: {pred.text}")
        print("  times:  " + " ".join(f"{p.label}[{p.start:.2f}-{p.end:.2f}]"
                                      for p in pred.phones))
    if rtf is not None:
        print(f"  real-time factor: {rtf:.3f} ({rtf * pred.duration:.3f} s to process "
              f"{pred.duration:.2f} s of audio)")
