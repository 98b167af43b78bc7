"""``sparse train``, ``sparse evaluate`` and ``sparse demo``.

Every expected failure (bad config, missing corpus, unreadable audio, bad checkpoint, a run
folder that already holds a run or that another process is writing) is reported as one
paragraph on stderr naming what and where, with exit status 2; nothing already written is
touched. SIGINT/SIGTERM during training save the 'last' checkpoint and exit with status 130.
Each output folder has one writer at a time (:mod:`sparse.train.lock`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

__all__ = ["register"]


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set optim.lr=3e-4 (repeatable)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``demo`` to ``sparse``'s parser."""
    from .demo import DEMO_CONFIG
    from .demo import TASKS as DEMO_TASKS

    p = subparsers.add_parser(
        "train", help="train a KWS or ASR encoder from a YAML config",
        description="Train a spiking encoder. The run folder receives the resolved config, "
        "versions, per-epoch metrics (metrics.jsonl), checkpoints (last, best), learning "
        "curves and the test evaluation. Runs under torchrun for DDP.",
    )
    p.add_argument("config", nargs="?", type=Path,
                   help="YAML config (default: the built-in defaults; with --resume: the run's "
                   "own config)")
    _add_set(p)
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default runs/<name>-<date>-<time>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    p.add_argument("--device", default=None, help="override train.device (cpu, cuda)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--help-config", action="store_true",
                   help="list every config field with its type, default and meaning")
    p.set_defaults(func=_run_train)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint (accuracy + confusion, or PER + alignments)",
        description="Evaluate a checkpoint on a split of its corpus or of --data; writes "
        "<split>.json and a human-readable <split>.txt (plus plots) into --out.",
    )
    p.add_argument("checkpoint", type=Path, help="a .pt checkpoint or a run folder (best.pt)")
    p.add_argument("--data", default=None,
                   help="corpus folder (or 'synth'); default: the corpus it was trained on")
    p.add_argument("--split", default="test", help="split to evaluate (default test)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default <run folder>/evaluation)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances")
    p.add_argument("--condition", choices=("clean", "telephone"), default="clean",
                   help="what the test audio goes through first: clean (as it is, default) or "
                   "telephone (8 kHz, 300-3,400 Hz, pink noise at 10 dB SNR; deterministic); "
                   "results go to <split>-<condition>.json/.txt")
    p.set_defaults(func=_run_evaluate)

    p = subparsers.add_parser(
        "demo", help="the main job: train a spiking speech encoder at a 2 ms step, test it, "
        "and test its phase-amplitude coupling for speech against noise",
        description="The original SPARSE experiment on the synthesised corpus: synthesise it "
        "(or reuse the cache), train the ASR encoder at a 2 ms step (500 Hz) with CTC on 39 "
        "phones (configs/demo_asr.yaml), report its phone error rate on held-out speakers, "
        "then analyse it (sparse analyze, into <run>/analysis): rasters, firing rates and the "
        "phase-amplitude coupling between its populations on the 64 longest test sentences, "
        "1000 shuffles per test, for speech and for a noise input of the same loudness. "
        "Everything goes into one run folder; open its index.html. --task kws runs the "
        "keyword-spotting demo instead (configs/kws_synth.yaml: 10 ms step, 1 s clips, so "
        "its page says which bands it cannot test).",
    )
    p.add_argument("--task", choices=DEMO_TASKS, default=DEMO_CONFIG["task"],
                   help="asr: phone recognition on sentences at 2 ms, the original experiment "
                   "(default); kws: keyword spotting on 1 s clips at 10 ms")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default runs/<name>-<date>-<time>)")
    p.add_argument("--tiny", action="store_true",
                   help="a tiny corpus and a tiny model that still learns: the whole job, "
                   "checked in a few minutes")
    p.add_argument("--resume", action="store_true", help="continue an interrupted demo (--out)")
    _add_set(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_demo)


def _fail(command: str, exc: BaseException) -> int:
    """Report ``exc`` as one paragraph on stderr (line breaks inside it become spaces)."""
    text = re.sub(r"\s*\n\s*", " ", str(exc).strip())
    print(f"sparse {command}: error: {text}", file=sys.stderr)
    return 2


def _expected_errors() -> tuple[type[BaseException], ...]:
    from ..data.audio import AudioError
    from .checkpoints import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .lock import LockError
    from .run import RunError

    return (ConfigError, DataError, CheckpointError, RunError, AudioError, FileExistsError,
            FloatingPointError, LockError)


def _run_train(args: argparse.Namespace) -> int:
    from .config import ConfigError, describe_config, load_config
    from .run import recorded_config, train_run
    from .trainer import TrainingInterrupted
    from .validate import allowed

    if args.help_config:
        for key, tp, default, doc in describe_config():
            if tp == "section":
                print(f"\n[{key}]  {' '.join((doc or '').split())}")
            else:
                rules = allowed(key)
                print(f"  {key} ({tp}; default {default}):\n      {doc}"
                      + (f"\n      allowed: {rules}" if rules else ""))
        return 0
    try:
        overrides = list(args.overrides)
        if args.device:  # (checked by sparse.cli.main)
            overrides.append(f"train.device={args.device}")
        if args.quiet:
            overrides.append("train.progress=false")
        if args.config is None and args.resume:
            # the run's own config.yaml; without it, the config its last checkpoint records
            # (train_run refuses a config.yaml edited away from that one)
            if args.out is None:
                raise ConfigError("--resume needs --out RUN_DIR")
            own = args.out / "config.yaml"
            cfg = (load_config(own, overrides) if own.is_file()
                   else recorded_config(args.out, overrides))
        else:
            cfg = load_config(args.config, overrides)
        summary = train_run(cfg, args.out, resume=args.resume, verbose=not args.quiet)
    except TrainingInterrupted as exc:
        print(f"sparse train: {exc}", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        return _fail("train", exc)
    if os.environ.get("RANK", "0") == "0":
        if "test" in summary:
            _print_test(summary)
        print(f"run folder: {summary['run_dir']}")
    return 0


def _print_test(summary: dict) -> None:
    t = summary["test"]
    if "accuracy" in t:
        print(f"test accuracy: {100 * t['accuracy']:.2f}% on {t['utterances']} utterances")
    else:
        print(f"test PER: {100 * t['per']:.2f}% (S {t['substitutions']}, D {t['deletions']}, "
              f"I {t['insertions']}, N {t['reference_length']})")


def _check_evaluate_options(args: argparse.Namespace) -> None:
    """Refuse bad ``sparse evaluate`` options before the checkpoint is read (``--device`` is
    checked by :func:`sparse.cli.main` for every command)."""
    from .config import ConfigError
    from .validate import SPLITS

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: must be at least 1 (utterances to evaluate)")
    names = sorted({s for splits in SPLITS.values() for s in splits})
    if args.split not in names:
        raise ConfigError(f"--split {args.split!r}: must be one of "
                          f"{', '.join(repr(s) for s in names)}")


def _run_evaluate(args: argparse.Namespace) -> int:
    from .run import evaluate_checkpoint

    try:
        _check_evaluate_options(args)
        result, paths = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.out,
                                            args.device, args.limit, args.condition)
    except _expected_errors() as exc:
        return _fail("evaluate", exc)
    print(paths["text"].read_text().split("\n\n")[0])
    print(f"written: {paths['json']} and {paths['text']}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    from .trainer import TrainingInterrupted

    try:
        run_demo(out=args.out, tiny=args.tiny, overrides=args.overrides, resume=args.resume,
                 quiet=args.quiet, task=args.task)
    except TrainingInterrupted as exc:
        print(f"sparse demo: {exc}", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        return _fail("demo", exc)
    return 0
