"""One training run from a config to a complete run folder, and evaluation of a checkpoint.

Run folder::

    config.yaml            the resolved config (every field, defaults included), its first
                           line a comment marking it as the run's own (CONFIG_HEADER)
    versions.json          Python, torch, numpy, sparse, git commit, platform, command line
    metrics.jsonl          one JSON record per epoch
    checkpoints/last.pt    written every epoch (and every train.checkpoint_every steps)
    checkpoints/best.pt    the best validation epoch
    curves.png             learning curves, redrawn after every epoch
    evaluation/<split>.json, <split>.txt, rates.png (and confusion.png for KWS)
    distributed.json       under torchrun: every rank's weight checksum at the end
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import atomic
from .checkpoints import (
    CheckpointError,
    checkpoint_file,
    load_checkpoint,
    load_model_state,
    remove_stale_temporaries,
    run_dir_of,
)
from .config import ConfigError, TrainConfig, apply_overrides, config_from_dict
from .data import DataError, load_split, resolve_corpus
from .distributed import DistInfo, barrier, cleanup, default_num_threads, setup
from .efficiency import format_efficiency, measure_efficiency
from .lock import LockError, folder_lock
from .model import TaskModel, build_model
from .plots import plot_learning_curves, plot_rate_distributions
from .tasks import task_of
from .trainer import ResumeError, Trainer, TrainingInterrupted, evaluate_model
from .validate import show_value

__all__ = ["CONFIG_HEADER", "RunError", "evaluate_checkpoint", "recorded_config", "train_run",
           "weights_digest", "write_evaluation", "write_run_config"]

#: keys that may differ between a run's config and the one given when resuming it
_RUNTIME_KEYS = {("train", "epochs"), ("train", "progress"), ("train", "num_threads"),
                 ("train", "device"), ("train", "tensorboard"), ("train", "evaluate_test"),
                 ("data", "cache_check")}  # how the cache checks files, not what it holds


class RunError(RuntimeError):
    """The run cannot start or continue (its folder, its config); nothing was overwritten."""


def _log(info: DistInfo, msg: str) -> None:
    if info.is_main:
        print(msg, flush=True)


def versions() -> dict[str, Any]:
    """Versions of everything that decides the numbers."""
    import subprocess

    import sparse

    commit = None
    try:
        repo = Path(sparse.__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        if out.returncode == 0:
            commit = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
        "sparse": getattr(sparse, "__version__", "unknown"), "git_commit": commit,
        "platform": platform.platform(), "processor": platform.processor(),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "argv": sys.argv, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every tensor of the state dict (names and bytes, in name order)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (for third-party code that uses it)
    torch.manual_seed(seed)


def _diff(a: dict[str, Any], b: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, (*prefix, k))
        elif va != vb:
            out.append(((*prefix, k), va, vb))
    return out


def _default_run_dir(cfg: TrainConfig) -> Path:
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _decide_run_dir(cfg: TrainConfig, out: Path | None, resume: bool, info: DistInfo) -> Path:
    """The run folder: ``out``, or (not resuming) a new one named after the config and the
    time, rank 0's on every rank."""
    if out is None:
        if resume:
            raise RunError("--resume needs the run folder (--out RUN_DIR)")
        out = _default_run_dir(cfg)
        if info.enabled:  # every rank must use rank 0's folder
            import torch.distributed as dist

            box = [str(out)]
            dist.broadcast_object_list(box, src=0)
            out = Path(box[0])
    return Path(out)


@contextlib.contextmanager
def _rank0_lock(run_dir: Path, info: DistInfo) -> Iterator[None]:
    """Hold the run folder's write lock on rank 0 (the only rank that writes it); under
    torchrun every rank fails when rank 0 cannot take it."""
    with contextlib.ExitStack() as stack:
        refusal = None
        if info.is_main:
            try:
                stack.enter_context(folder_lock(run_dir))
            except LockError as exc:
                refusal = str(exc)
        if info.enabled:
            import torch.distributed as dist

            box = [refusal]
            dist.broadcast_object_list(box, src=0)
            refusal = box[0]
        if refusal is not None:
            raise LockError(refusal)
        yield


#: The first line of the ``config.yaml`` a run writes. A ``config.yaml`` without it in an
#: output folder is someone's own file, and a new run refuses to write over it.
CONFIG_HEADER = "# sparse train: the resolved config of this run (every field, defaults included)"


def _written_by_sparse(path: Path) -> bool:
    """Whether ``path`` is a ``config.yaml`` that a run wrote (it starts with
    :data:`CONFIG_HEADER`)."""
    with open(path, "rb") as f:
        return f.readline().rstrip(b"\r\n") == CONFIG_HEADER.encode()


def write_run_config(cfg: TrainConfig, run_dir: Path) -> Path:
    """``<run_dir>/config.yaml``: :data:`CONFIG_HEADER` and the resolved config."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    path.write_text(CONFIG_HEADER + "\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False),
                    encoding="utf-8")
    return path


def _last_checkpoint(run_dir: Path) -> Path:
    last = Path(run_dir) / "checkpoints" / "last.pt"
    if not last.is_file():
        raise RunError(f"cannot resume: {last} does not exist (no checkpoint in {run_dir})")
    return last


def recorded_config(run_dir: Path, overrides: list[str] | None = None) -> TrainConfig:
    """The config a run was trained with, as its last checkpoint records it (the optimiser,
    the scheduler and the weights in it belong to that config), with ``overrides``
    (``--set KEY=VALUE``) applied.

    Raises:
        RunError: the run folder has no last checkpoint; CheckpointError: it cannot be read
            or holds no valid config; ConfigError: a bad override.
    """
    last = _last_checkpoint(run_dir)
    stored = load_checkpoint(last)["config"]
    if not isinstance(stored, dict):
        raise CheckpointError(f"checkpoint {last} holds no config (its 'config' entry is a "
                              f"{type(stored).__name__}); it cannot be resumed")
    data = apply_overrides(copy.deepcopy(stored), overrides)
    source = f"the config recorded in {last}"
    if overrides:
        source += f" with --set {' '.join(overrides)}"
    try:
        return config_from_dict(data, source)
    except ConfigError as exc:
        if overrides:
            raise
        raise CheckpointError(str(exc)) from None


def _prepare_run_dir(cfg: TrainConfig, out: Path, resume: bool) -> tuple[Path, TrainConfig]:
    """Check the run folder before any data is loaded and, when resuming, decide the config
    to use: the one the last checkpoint records, with the runtime fields of ``cfg``."""
    last = out / "checkpoints" / "last.pt"
    if resume:
        recorded = recorded_config(out)
        differences = _diff(recorded.to_dict(), cfg.to_dict())
        changed = [d for d in differences if d[0] not in _RUNTIME_KEYS]
        if changed:
            key, was, now = changed[0]
            runtime = ", ".join(".".join(k) for k in sorted(_RUNTIME_KEYS))
            raise RunError(
                f"cannot resume {out} with a different config: '{'.'.join(key)}' was "
                f"{show_value(was)} when {last} was written and is now {show_value(now)} "
                f"({len(changed)} difference(s), from the config file, its --set values or an "
                f"edited {out / 'config.yaml'}). The weights and the optimiser belong to the "
                f"recorded config, and only {runtime} may change on resume: undo the change, "
                "or start a new run folder. Nothing was changed."
            )
        data = recorded.to_dict()
        for (sec, key), _, value in differences:
            data[sec][key] = value
        return out, config_from_dict(data, f"the config recorded in {last}")
    if last.exists() or (out / "metrics.jsonl").exists():
        raise RunError(
            f"run folder {out} already holds a run (checkpoints or metrics); continue it with "
            "--resume, or choose another --out. Nothing was changed."
        )
    own = out / "config.yaml"
    if own.exists() and not (own.is_file() and _written_by_sparse(own)):
        raise RunError(
            f"{own} is already there and was not written by a sparse run: the run would write "
            "its resolved config over it. Choose another --out folder for the run (your file "
            "stays as it is). Nothing was changed."
        )
    return out, cfg


def train_run(cfg: TrainConfig, out: Path | None = None, resume: bool = False,
              verbose: bool = True) -> dict[str, Any]:
    """Train (or resume) a run; evaluate the best checkpoint on the test split; return a
    summary dict (``run_dir``, ``test`` metrics, timings). Works under ``torchrun``.

    Raises:
        ConfigError, DataError, CheckpointError, RunError: with a message naming the
            problem and the path; :class:`TrainingInterrupted` after SIGINT/SIGTERM.
    """
    info, device = setup(cfg.train.device)
    try:
        run_dir = _decide_run_dir(cfg, out, resume, info)
        with _rank0_lock(run_dir, info):
            return _train_run(cfg, run_dir, resume, verbose, info, device)
    finally:
        cleanup(info)


def _train_run(cfg: TrainConfig, out: Path, resume: bool, verbose: bool,
               info: DistInfo, device: torch.device) -> dict[str, Any]:
    t_start = time.perf_counter()
    run_dir, cfg = _prepare_run_dir(cfg, out, resume)
    if info.is_main:  # the lock holder: no other writer of the folder runs
        stale = remove_stale_temporaries(run_dir / "checkpoints")
        if stale:
            _log(info, f"removed {len(stale)} unfinished checkpoint file(s) that an interrupted "
                       f"run left in {run_dir / 'checkpoints'}: "
                       f"{', '.join(p.name for p in stale)}")
    torch.set_num_threads(cfg.train.num_threads or default_num_threads())
    _seed_everything(cfg.seed)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    root, train_set, valid_set = _load_sets(cfg, verbose, info)
    timings["data_seconds"] = time.perf_counter() - t0
    _log(info, f"data: {len(train_set)} training / {len(valid_set)} validation utterances, "
               f"{len(train_set.classes)} classes ({timings['data_seconds']:.1f} s)")
    model = build_model(cfg, len(train_set.classes)).to(device)
    if cfg.features.standardization == "global":
        model.fit_standardization(train_set.features)
    run_dir.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(record: dict[str, Any]) -> None:
        plot_learning_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
        metric = task_of(cfg).progress_text(record)
        print(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}, valid loss "
              f"{record['valid_loss']:.4f}, {metric}, lr {record['lr']:.2e}, "
              f"{record['epoch_seconds']:.0f} s", flush=True)

    augment = None
    if cfg.augment.enabled:
        from .augment import make_augmenter

        augment = make_augmenter(cfg, root, train_set.ids, info.rank)
    trainer = Trainer(cfg, model, train_set, valid_set, run_dir, info=info, device=device,
                      on_epoch_end=on_epoch_end, augment=augment)
    trainer.corpus_root = str(root.resolve())
    if resume:
        try:
            trainer.resume()
        except ResumeError as exc:
            raise RunError(str(exc)) from None
        _log(info, f"resumed {run_dir} at epoch {trainer.progress.epoch + 1}, step "
                   f"{trainer.progress.step_in_epoch}")
    if info.is_main:
        write_run_config(cfg, run_dir)
        if not resume:
            (run_dir / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")
    _log(info, f"run folder: {run_dir}")
    t0 = time.perf_counter()
    trainer.fit()
    timings["train_seconds"] = time.perf_counter() - t0
    summary: dict[str, Any] = {"run_dir": str(run_dir), "timings": timings,
                               "world_size": info.world_size}
    digest = weights_digest(model)
    if info.enabled:
        import torch.distributed as dist

        digests: list[Any] = [None] * info.world_size
        dist.all_gather_object(digests, digest)
        if info.is_main:
            (run_dir / "distributed.json").write_text(json.dumps(
                {"world_size": info.world_size, "weights_sha256": digests,
                 "identical": len(set(digests)) == 1}, indent=2) + "\n")
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks finished with different weights: {digests}")
    summary["weights_sha256"] = digest
    if cfg.train.evaluate_test and info.is_main:
        with folder_lock(run_dir / "evaluation"):
            summary["test"] = _test_best(cfg, run_dir, len(train_set.classes), device)
        timings["test_seconds"] = summary["test"].pop("seconds")
    barrier(info)
    timings["total_seconds"] = time.perf_counter() - t_start
    if info.is_main:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _load_sets(cfg: TrainConfig, verbose: bool, info: DistInfo) -> tuple[Path, Any, Any]:
    """The corpus folder and the training and validation sets. The corpus and the feature
    cache are built by rank 0 first, then read by the others."""
    sets = {}
    for turn in ([0] if not info.enabled else [0, 1]):
        if (turn == 0) == info.is_main:
            root = resolve_corpus(cfg)
            _log(info, f"corpus: {root}")
            for split, limit in ((cfg.data.train_split, cfg.data.limit_train),
                                 (cfg.data.valid_split, cfg.data.limit_eval)):
                sets[split] = load_split(cfg, root, split, limit, verbose=verbose and info.is_main)
        barrier(info)
    return root, sets[cfg.data.train_split], sets[cfg.data.valid_split]


def _test_best(cfg: TrainConfig, run_dir: Path, n_classes: int, device: torch.device
               ) -> dict[str, Any]:
    """Evaluate the run's best checkpoint on the test split into ``<run_dir>/evaluation``;
    the headline metrics and how long it took (``seconds``)."""
    t0 = time.perf_counter()
    test_root = resolve_corpus(cfg, build=True)
    test_set = load_split(cfg, test_root, cfg.data.test_split, cfg.data.limit_eval)
    best_path = run_dir / "checkpoints" / "best.pt"
    best = load_checkpoint(best_path, map_location=device)
    eval_model = build_model(cfg, n_classes).to(device)
    load_model_state(eval_model, best["model"], best_path)
    result = evaluate_model(eval_model, test_set, cfg, device=device, keep_details=True)
    result["efficiency"] = measure_efficiency(eval_model, test_set, cfg.task, device)
    result["checkpoint"] = str(run_dir / "checkpoints" / "best.pt")
    result["best_epoch"] = best["progress"]["best_epoch"]
    result["condition"] = "clean"
    write_evaluation(result, cfg, run_dir / "evaluation", cfg.data.test_split)
    test = {k: v for k, v in result.items()
            if k not in ("neuron_rates_hz", "confusion", "utterance_details", "classes")}
    test["seconds"] = time.perf_counter() - t0
    return test


def write_evaluation(result: dict[str, Any], cfg: TrainConfig, out_dir: Path, split: str
                     ) -> dict[str, Path]:
    """``<split>.json`` (everything), ``<split>.txt`` (human-readable, the task's report),
    ``rates.png`` and the task's plots (``confusion.png`` for classification) in
    ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{split}.json", "text": out_dir / f"{split}.txt"}
    atomic.write_text(paths["json"], json.dumps(result, indent=1) + "\n")
    lines = [f"split: {split}  utterances: {result['utterances']}  "
             + (f"condition: {result['condition']}  " if "condition" in result else "")
             + f"checkpoint: {result.get('checkpoint', '-')}"]
    report, plots = task_of(cfg).report(result, out_dir)
    lines += report
    paths.update(plots)
    if "efficiency" in result:  # the NeuroBench numbers, before the details
        lines.insert(2, format_efficiency(result["efficiency"]))
    lines.append("")
    lines.append("mean firing rates (Hz): " + ", ".join(
        f"{k} {v:.1f}" for k, v in result.get("rates_hz", {}).items()))
    paths["text"].write_text("\n".join(lines) + "\n")
    if "neuron_rates_hz" in result:
        r = cfg.regularizer
        paths["rates"] = plot_rate_distributions(result["neuron_rates_hz"], out_dir / "rates.png",
                                                 r.r_min_hz, r.r_max_hz)
    return paths


def checkpoint_config(checkpoint: Path, state: dict[str, Any], data: str | None = None
                      ) -> TrainConfig:
    """The config stored in a loaded checkpoint, its corpus replaced by ``data`` when given.

    Raises:
        CheckpointError: the stored config (or the override) is not a valid config.
    """
    try:
        cfg = config_from_dict(state["config"], f"the config stored in {checkpoint}")
        if data is not None:
            d = cfg.to_dict()
            d["data"]["corpus"] = str(data)
            cfg = config_from_dict(d, f"{checkpoint} with --data {data}")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    return cfg


def evaluate_checkpoint(checkpoint: str | Path, data: str | None = None, split: str = "test",
                        out: Path | None = None, device: str = "cpu", limit: int | None = None,
                        condition: str = "clean") -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate a checkpoint on a split of its corpus (or of ``data``, a corpus path or
    'synth'), its audio under the test ``condition`` (:mod:`sparse.data.conditions`); write
    the results (default folder: ``<run>/evaluation``, the run folder being ``checkpoint``
    itself when it is a folder; files ``<split>.*``, or ``<split>-<condition>.*`` for a
    condition other than 'clean')."""
    out = Path(out) if out is not None else run_dir_of(checkpoint) / "evaluation"
    with folder_lock(out):
        return _evaluate_into(checkpoint_file(checkpoint), data, split, out, device, limit,
                              condition)


def _evaluate_into(checkpoint: Path, data: str | None, split: str, out: Path, device: str,
                   limit: int | None, condition: str = "clean"
                   ) -> tuple[dict[str, Any], dict[str, Path]]:
    state = load_checkpoint(checkpoint)
    cfg = checkpoint_config(checkpoint, state, data)
    if limit is not None:
        d = cfg.to_dict()
        d["data"]["limit_eval"] = limit
        cfg = config_from_dict(d, str(checkpoint))
    classes = state.get("classes")
    model: TaskModel | None = None
    if classes is not None:  # a checkpoint that holds no usable model fails before the corpus
        model = build_model(cfg, len(classes)).to(device)
        load_model_state(model, state["model"], checkpoint)
    root = resolve_corpus(cfg)
    test_set = load_split(cfg, root, split, cfg.data.limit_eval, condition=condition)
    if classes is not None and list(classes) != list(test_set.classes):
        raise DataError(
            f"the corpus {root} has classes {test_set.classes[:5]}... but checkpoint "
            f"{checkpoint} was trained on {list(classes)[:5]}... ({len(classes)} classes)"
        )
    if model is None:
        model = build_model(cfg, len(test_set.classes)).to(device)
        load_model_state(model, state["model"], checkpoint)
    result = evaluate_model(model, test_set, cfg, device=device, keep_details=True)
    result["efficiency"] = measure_efficiency(model, test_set, cfg.task, device)
    result["checkpoint"] = str(checkpoint)
    result["corpus"] = str(root)
    result["condition"] = condition
    paths = write_evaluation(result, cfg, out,
                             split if condition == "clean" else f"{split}-{condition}")
    return result, paths


__all__ += ["DataError", "LockError", "TrainingInterrupted", "versions"]
