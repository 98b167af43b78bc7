"""The training loop: Adam, annealing, gradient clipping, the firing-rate regulariser,
checkpoints that resume exactly, DDP, progress bar and per-epoch JSON-lines log.

A run that diverges stops with :class:`FloatingPointError` and writes no checkpoint of the
diverged state: on a non-finite training loss (before the step), on a weight that became
non-finite (checked before every checkpoint and at every epoch end), and on a non-finite
validation loss. The run folder keeps the checkpoints of the last good state.

Exact resumption: the data order of an epoch is a pure function of ``(seed, epoch)``
(:class:`~sparse.data.batching.LengthBucketSampler`), so a checkpoint only needs the epoch,
the number of batches already taken in it, and the generator states (dropout draws from the
global torch generator). A run stopped after any step and resumed from that step's checkpoint
performs exactly the same remaining computation as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..data.batching import LengthBucketSampler
from ..lengths import length_mask
from ..snn import constrain_parameters
from .checkpoints import (
    capture_rng,
    first_invalid_tensor,
    load_checkpoint,
    load_model_state,
    restore_rng,
    save_checkpoint,
)
from .config import TrainConfig
from .data import FeatureSet, collate_features, length_sorted_batches
from .distributed import DistInfo, all_reduce_sums
from .losses import firing_rates, rate_regularizer
from .model import TaskModel
from .schedulers import build_scheduler
from .tasks import task_of

__all__ = ["ResumeError", "Trainer", "TrainingInterrupted", "evaluate_model"]


class ResumeError(RuntimeError):
    """A checkpoint cannot continue this run (other corpus, other number of processes)."""


class TrainingInterrupted(RuntimeError):
    """Training stopped on SIGINT/SIGTERM after saving the 'last' checkpoint."""


@dataclass
class _Progress:
    epoch: int = 0           # current epoch (0-based)
    step_in_epoch: int = 0   # batches of this epoch already trained on
    global_step: int = 0
    best: float | None = None
    best_epoch: int = -1
    sums: dict[str, float] = field(default_factory=dict)  # running sums of this epoch
    train_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step, "best": self.best,
                "best_epoch": self.best_epoch, "sums": dict(self.sums),
                "train_seconds": self.train_seconds}


def _unwrap(model: torch.nn.Module) -> TaskModel:
    return model.module if hasattr(model, "module") else model  # type: ignore[return-value]


def _population_filter(names: list[str], which: str) -> list[str]:
    return [n for n in names if which == "all" or n.startswith("cortex")]


@torch.no_grad()
def evaluate_model(model: TaskModel, data: FeatureSet, cfg: TrainConfig, *,
                   info: DistInfo | None = None, device: torch.device | str = "cpu",
                   keep_details: bool = False, batch_size: int | None = None
                   ) -> dict[str, Any]:
    """Loss and the task's metrics (accuracy, PER; see :meth:`Task.tally`) of ``model`` on
    ``data``.

    Under DDP (``info``) each rank scores every ``world_size``-th utterance and the sums are
    all-reduced, so all ranks return the same numbers. With ``keep_details`` (one process)
    the result also holds the task's details (confusion matrix, per-utterance alignments)
    and the per-neuron firing rates of every population.
    """
    info = info or DistInfo()
    task = task_of(cfg)
    model.eval()
    order = sorted(range(len(data)), key=lambda i: data.features[i].shape[0])
    mine = order[info.rank::info.world_size]
    bs = batch_size or max(cfg.train.batch_size, 32)
    sums: dict[str, float] = {"loss": 0.0, "items": 0.0}
    tally = task.tally(keep_details)
    spike_sums: dict[str, torch.Tensor] = {}
    seconds = 0.0
    for idx, batch, x, lengths in length_sorted_batches(data, task, bs, device, mine):
        out = model(x, lengths)
        sums["loss"] += tally.add(out, batch, data, idx, device)
        sums["items"] += len(idx)
        mask = length_mask(lengths, x.shape[1]).float()
        seconds += float(mask.sum()) * model.dt_ms / 1000.0
        for name, s in out.spikes.items():
            per = (s * mask.unsqueeze(-1)).sum(dim=(0, 1)).double().cpu()
            spike_sums[name] = spike_sums.get(name, 0) + per
    for name, per in spike_sums.items():
        sums[f"spikes/{name}"] = float(per.sum())
        sums[f"neurons/{name}"] = float(per.numel())
    sums["seconds"] = seconds
    sums.update(tally.sums())
    total = all_reduce_sums(sums, info, device)
    items = max(1.0, total["items"])
    result: dict[str, Any] = {"loss": total["loss"] / items, "utterances": int(total["items"])}
    rates = {}
    for key, value in total.items():
        if key.startswith("spikes/"):
            name = key.split("/", 1)[1]
            rates[name] = value / max(1.0, total[f"neurons/{name}"]) / max(1e-9, total["seconds"])
    result["rates_hz"] = rates
    details = tally.result(total, items, data)
    result.update({k: v for k, v in details.items() if k not in _DETAILS})
    if keep_details:
        result["neuron_rates_hz"] = {
            name: (per / max(1e-9, seconds)).tolist() for name, per in spike_sums.items()}
        result.update({k: v for k, v in details.items() if k in _DETAILS})
    return result


#: keys of an evaluation that only ``keep_details`` asks for (they follow the firing rates)
_DETAILS = ("confusion", "classes", "utterance_details")


class Trainer:
    """Trains a :class:`TaskModel` on feature sets, writing into ``run_dir``.

    Args:
        cfg: the resolved config.
        model: the model (already normalisation-fitted), on ``device``.
        train_set, valid_set: feature sets.
        run_dir: the run folder (checkpoints/, metrics.jsonl).
        info: DDP rank info; device: where to compute.
        on_epoch_end: called on rank 0 with the epoch's record after it is logged
            (plots, summaries).
        augment: ``augment(batch, indices, epoch, step) -> batch`` applied to every training
            batch (:func:`sparse.train.augment.make_augmenter`); a pure function of its
            arguments, so resuming stays exact.
    """

    def __init__(self, cfg: TrainConfig, model: TaskModel, train_set: FeatureSet,
                 valid_set: FeatureSet, run_dir: Path, *, info: DistInfo | None = None,
                 device: torch.device | str = "cpu",
                 on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
                 augment: Callable[..., dict[str, torch.Tensor]] | None = None) -> None:
        self.cfg = cfg
        self.task = task_of(cfg)
        self.info = info or DistInfo()
        self.device = torch.device(device)
        self.raw_model = model
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # LIF-only populations (the auditory nerve) hold adaptation parameters that get no
            # gradient, so DDP must look for unused parameters
            self.model: torch.nn.Module = DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=True)
        else:
            self.model = model
        self.train_set, self.valid_set = train_set, valid_set
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.log_path = self.run_dir / "metrics.jsonl"
        self.on_epoch_end = on_epoch_end
        self.augment = augment
        o = cfg.optim
        self.optimizer = torch.optim.Adam(model.parameters(), lr=o.lr, betas=tuple(o.betas),
                                          weight_decay=o.weight_decay)
        self.scheduler = build_scheduler(cfg.schedule, self.optimizer)
        self.sampler = LengthBucketSampler(
            train_set.lengths, batch_size=cfg.train.batch_size, shuffle=True,
            seed=cfg.seed, num_replicas=self.info.world_size, rank=self.info.rank,
        ) if cfg.train.sort_by_length else None
        self.progress = _Progress()
        self._stop_signal: int | None = None
        self._tb = None
        #: the corpus folder the run trains on (recorded in checkpoints, checked on resume)
        self.corpus_root: str = ""

    # ------------------------------------------------------------------ data order

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            return list(self.sampler)
        g = torch.Generator().manual_seed(self.cfg.seed * 1000003 + epoch)
        perm = torch.randperm(len(self.train_set), generator=g).tolist()
        bs, w = self.cfg.train.batch_size, self.info.world_size
        batches = [perm[i:i + bs] for i in range(0, len(perm), bs)]
        total = math.ceil(len(batches) / w) * w
        batches = (batches * 2)[:total]
        return batches[self.info.rank::w]

    # ------------------------------------------------------------------ checkpoints

    def state(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "config": self.cfg.to_dict(),
            "classes": list(self.train_set.classes),
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": capture_rng(),
            "progress": self.progress.to_dict(),
            "metrics": metrics or {},
            "world_size": self.info.world_size,
            "corpus_root": self.corpus_root,
        }

    def save(self, name: str, metrics: dict[str, Any] | None = None) -> None:
        """Write checkpoint ``name`` (rank 0); every rank first checks the weights."""
        self._check_weights()
        if self.info.is_main:
            save_checkpoint(self.state(metrics), self.ckpt_dir / f"{name}.pt")

    def _check_weights(self) -> None:
        """Raise ``FloatingPointError`` when a weight or buffer is no longer finite (or a
        neuron parameter left its range), naming the first such tensor: a diverged state is
        never written as a checkpoint."""
        problem = first_invalid_tensor(self.raw_model, self.raw_model.state_dict())
        if problem is not None:
            p = self.progress
            raise FloatingPointError(
                f"training diverged at epoch {p.epoch + 1}, step {p.step_in_epoch} (step "
                f"{p.global_step} of the run): {problem}. No checkpoint of this state was "
                f"written; {self.ckpt_dir} keeps the last good one. Start a new run with a lower "
                "optim.lr or with optim.grad_clip set."
            )

    def resume(self, path: Path | None = None) -> None:
        """Restore everything from the 'last' checkpoint (or ``path``)."""
        path = path or self.ckpt_dir / "last.pt"
        state = load_checkpoint(path, map_location=self.device)
        load_model_state(self.raw_model, state["model"], path)
        if state.get("world_size", 1) != self.info.world_size:
            raise ResumeError(
                f"checkpoint {path} was written by a run with {state.get('world_size', 1)} "
                f"process(es); resume it with the same number (now {self.info.world_size}) so "
                "that the data order continues exactly"
            )
        stored_root = state.get("corpus_root", "")
        if stored_root and self.corpus_root and stored_root != self.corpus_root:
            raise ResumeError(
                f"checkpoint {path} was trained on the corpus {stored_root} but the config now "
                f"resolves to {self.corpus_root} (a different corpus, or a synthesised corpus "
                "of another generator version); resuming would not continue the same run"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        p = state["progress"]
        self.progress = _Progress(p["epoch"], p["step_in_epoch"], p["global_step"], p["best"],
                                  p["best_epoch"], dict(p["sums"]), p.get("train_seconds", 0.0))
        restore_rng(state["rng"])
        # the log keeps only the epochs the checkpoint has seen; later lines came from the
        # lost part of the killed run and are written again
        if self.info.is_main and self.log_path.is_file():
            lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip()]
            kept = [ln for ln in lines if json.loads(ln)["epoch"] <= p["epoch"]]
            self.log_path.write_text("".join(ln + "\n" for ln in kept))

    # ------------------------------------------------------------------ signals

    def _handle_signal(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        self._stop_signal = signum

    def _install_signals(self) -> dict[int, Any]:
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old[sig] = signal.signal(sig, self._handle_signal)
            except ValueError:  # not the main thread
                pass
        return old

    # ------------------------------------------------------------------ the loop

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        x = batch["features"].to(self.device)
        lengths = batch["lengths"].to(self.device)
        out = self.model(x, lengths)
        n = x.shape[0]
        stats: dict[str, float] = {"items": n}
        task_loss, counts = self.task.training_loss(out, batch, self.device)
        stats.update(counts)
        rates = firing_rates(out.spikes, lengths, self.raw_model.dt_ms)
        r = cfg.regularizer
        chosen = {k: v for k, v in rates.items()
                  if k in _population_filter(list(rates), r.populations)}
        reg = rate_regularizer(chosen, r.r_min_hz, r.r_max_hz, r.weight) if r.weight > 0 \
            else task_loss.new_zeros(())
        loss = task_loss + reg
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {float(loss)} at step {self.progress.global_step} "
                f"(task loss {float(task_loss)}, regulariser {float(reg)}); lower optim.lr or "
                "set optim.grad_clip"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        constrain_parameters(self.raw_model)
        stats["loss"] = float(task_loss.detach()) * n
        stats["reg"] = float(reg.detach()) * n
        for name, rate in rates.items():
            stats[f"rate/{name}"] = float(rate.detach().mean()) * n
        return stats

    def fit(self) -> dict[str, Any]:
        """Train for ``cfg.train.epochs`` epochs from the current progress; return the last
        epoch's record. Raises :class:`TrainingInterrupted` after SIGINT/SIGTERM (the 'last'
        checkpoint then holds the step reached)."""
        cfg = self.cfg
        old = self._install_signals()
        record: dict[str, Any] = {}
        if cfg.train.tensorboard and self.info.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise RuntimeError(
                    "train.tensorboard is true but TensorBoard is not installed "
                    "(pip install tensorboard), or set train.tensorboard=false"
                ) from exc
            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        try:
            while self.progress.epoch < cfg.train.epochs:
                record = self._run_epoch()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            if self._tb is not None:
                self._tb.close()
        return record

    def _run_epoch(self) -> dict[str, Any]:
        cfg, p = self.cfg, self.progress
        batches = self._epoch_batches(p.epoch)
        show = cfg.train.progress and self.info.is_main
        bar = None
        if show:
            from tqdm import tqdm

            bar = tqdm(total=len(batches), initial=p.step_in_epoch,
                       desc=f"epoch {p.epoch + 1}/{cfg.train.epochs}", unit="batch",
                       dynamic_ncols=True, leave=True)
        self.model.train()
        t0 = time.perf_counter()
        shown_t0 = t0  # t0 restarts at each mid-epoch checkpoint; the throughput shown must not
        items_here = 0
        while p.step_in_epoch < len(batches):
            batch = collate_features(self.train_set, batches[p.step_in_epoch], self.task)
            if self.augment is not None:
                batch = self.augment(batch, batches[p.step_in_epoch], p.epoch, p.step_in_epoch)
            self.scheduler.step_batch(p.global_step, cfg.train.epochs * len(batches))
            stats = self._train_step(batch)
            for k, v in stats.items():
                p.sums[k] = p.sums.get(k, 0.0) + v
            p.step_in_epoch += 1
            p.global_step += 1
            items_here += int(stats["items"])
            if bar is not None:
                n = max(1.0, p.sums["items"])
                cortex = [k for k in p.sums if k.startswith("rate/cortex")]
                rate = sum(p.sums[k] for k in cortex) / max(1, len(cortex)) / n
                speed = items_here / max(1e-9, time.perf_counter() - shown_t0)
                bar.set_postfix(loss=f"{p.sums['loss'] / n:.3f}", rate=f"{rate:.1f}Hz",
                                utt_s=f"{speed:.0f}")
                bar.update(1)
            stop = self._stop_signal is not None
            every = cfg.train.checkpoint_every
            if stop or (every and p.global_step % every == 0 and p.step_in_epoch < len(batches)):
                p.train_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                self.save("last")
            if stop:
                if bar is not None:
                    bar.close()
                raise TrainingInterrupted(
                    f"stopped by signal {self._stop_signal} at epoch {p.epoch + 1}, step "
                    f"{p.step_in_epoch}; the last checkpoint holds this step: continue with "
                    "--resume"
                )
        if bar is not None:
            bar.close()
        p.train_seconds += time.perf_counter() - t0
        return self._end_epoch(items_here)

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (batch-norm running statistics): DDP broadcasts
        them at the start of each forward, so after the last step of an epoch they differ."""
        if self.info.enabled:
            import torch.distributed as dist

            for buf in self.raw_model.buffers():
                dist.broadcast(buf.data, src=0)

    def _end_epoch(self, items_here: int) -> dict[str, Any]:
        cfg, p = self.cfg, self.progress
        self._sync_buffers()
        self._check_weights()
        train = all_reduce_sums(p.sums, self.info, self.device)
        n = max(1.0, train.get("items", 0.0))
        t_valid = time.perf_counter()
        valid = evaluate_model(self.raw_model, self.valid_set, cfg, info=self.info,
                               device=self.device)
        valid_seconds = time.perf_counter() - t_valid
        if not math.isfinite(valid["loss"]):  # the same on every rank (all-reduced)
            raise FloatingPointError(
                f"training diverged in epoch {p.epoch + 1}: the validation loss is "
                f"{valid['loss']} although every weight is finite (the model's output "
                f"overflows). No checkpoint of this state was written; {self.ckpt_dir} keeps "
                "the last good one. Start a new run with a lower optim.lr or with "
                "optim.grad_clip set."
            )
        lr = self.optimizer.param_groups[0]["lr"]
        record: dict[str, Any] = {
            "epoch": p.epoch + 1, "step": p.global_step, "lr": lr,
            "train_loss": train.get("loss", 0.0) / n, "train_reg": train.get("reg", 0.0) / n,
            "train_rates_hz": {k.split("/", 1)[1]: v / n for k, v in train.items()
                               if k.startswith("rate/")},
            "valid_loss": valid["loss"], "valid_rates_hz": valid["rates_hz"],
            "epoch_seconds": p.train_seconds, "valid_seconds": valid_seconds,
            "train_utterances_per_second": train.get("items", 0.0) / max(1e-9, p.train_seconds),
        }
        fields, score = self.task.epoch_fields(train, n, valid)
        record.update(fields)
        improved = p.best is None or score < p.best
        if improved:
            p.best, p.best_epoch = score, p.epoch + 1
        record["best_epoch"] = p.best_epoch
        self.scheduler.step(valid["loss"])
        record["next_lr"] = self.optimizer.param_groups[0]["lr"]
        p.epoch += 1
        p.step_in_epoch = 0
        p.sums = {}
        p.train_seconds = 0.0
        if self.info.is_main:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            if improved:
                self.save("best", record)
            self.save("last", record)
            if self._tb is not None:
                for k, v in record.items():
                    if isinstance(v, (int, float)):
                        self._tb.add_scalar(k, v, p.epoch)
                for group in ("train_rates_hz", "valid_rates_hz"):
                    for name, v in record[group].items():
                        self._tb.add_scalar(f"{group}/{name}", v, p.epoch)
            if self.on_epoch_end is not None:
                self.on_epoch_end(record)
        return record
