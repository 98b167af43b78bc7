"""Checkpoints that lose nothing: atomic writes, safe loads, clear errors.

A checkpoint is one ``torch.save`` file holding plain containers, numbers, strings and tensors
only, so that it loads with ``torch.load(weights_only=True)`` (no pickled code runs):

``format`` (:data:`FORMAT`), ``config`` (the resolved config as nested dicts), ``model``
(state dict), and for resuming ``optimizer``, ``scheduler``, ``rng`` (torch, CUDA, numpy and
Python generator states), ``progress`` (epoch, step in epoch, global step, running sums of the
current epoch, best metric so far), plus ``metrics`` of the epoch that wrote it.

Writes go to a temporary file in the same folder (``.<name>.<pid>.<8 hex>.tmp``), are flushed
to disk, then renamed over the target (``os.replace``): a run killed while writing leaves the
previous checkpoint intact, and at most that temporary file, which
:func:`remove_stale_temporaries` deletes when the run starts again.

A checkpoint whose model holds a non-finite number, or a neuron parameter outside the range
its layer keeps it in, describes no usable model: :func:`first_invalid_tensor` finds the first
such tensor, and :func:`load_model_state` refuses it by name.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import save_torch
from ..snn import a_cap, parameter_ranges
from .config import with_former_defaults
from .lock import process_running

__all__ = [
    "FORMAT",
    "CheckpointError",
    "capture_rng",
    "check_compatible",
    "first_invalid_tensor",
    "load_checkpoint",
    "load_model_state",
    "parameter_ranges",
    "remove_stale_temporaries",
    "restore_rng",
    "save_checkpoint",
]

FORMAT = "sparse-train-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the model; the message says which
    file and what is wrong."""


#: the temporary file of a checkpoint being written: ``.<name>.<pid>.<8 hex>.tmp`` (the form of
#: :func:`sparse.atomic.temporary_path`), and the
#: ``.<name>.<8 characters>.tmp`` of ``tempfile.mkstemp`` that earlier versions used
_TEMPORARY = re.compile(r"\.(?P<target>.+\.pt)\.(?:(?P<pid>\d+)\.[0-9a-f]{8}|[a-z0-9_]{8})\.tmp")


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (:func:`sparse.atomic.save_torch`: temporary
    file + fsync + ``os.replace``)."""
    return save_torch({"format": FORMAT, **state}, Path(path))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files that checkpoint writes killed before their rename left in
    ``folder``; return them.

    Only names of the form :func:`save_checkpoint` gives its temporary files are considered,
    and of those only the ones whose writer is not a running process of this machine (a name
    without a pid, from an earlier version, counts as finished). Call it while holding the
    run folder's lock, so that no other writer of the folder can be running.
    """
    removed = []
    try:
        entries = sorted(Path(folder).iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or not entry.is_file() or entry.is_symlink():
            continue
        pid = match.group("pid")
        # a running writer's file is left alone; this process's pid is an earlier process's
        # here, since this one has written nothing yet
        if pid is not None and int(pid) != os.getpid() and process_running(int(pid)):
            continue
        try:
            entry.unlink()
        except FileNotFoundError:
            continue
        removed.append(entry)
    return removed


def checkpoint_file(path: str | Path) -> Path:
    """The file a checkpoint argument names: a run folder -> its ``checkpoints/best.pt`` (or a
    ``best.pt`` directly inside it); anything else is itself."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "best.pt"):
            if candidate.is_file():
                return candidate
    return path


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder of a checkpoint (``<run>/checkpoints/best.pt`` -> ``<run>``); a folder
    is its own run folder."""
    path = Path(checkpoint)
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: the file is missing, empty, truncated or corrupt, needs pickled code,
            or is not a ``sparse train`` checkpoint.
    """
    path = checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was never written")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read: it is truncated, corrupt or not a torch file "
            f"({type(exc).__name__}: {first[:300]}). Nothing was changed; use another "
            "checkpoint (the run folder keeps 'last.pt' and 'best.pt')."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path} is not a sparse training checkpoint (format {found!r}, expected {FORMAT!r})"
        )
    for key in ("config", "model"):
        if key not in state:
            raise CheckpointError(f"checkpoint {path} has no '{key}' entry: it is incomplete")
    if isinstance(state["config"], dict):
        with_former_defaults(state["config"])
    return state


def check_compatible(model: torch.nn.Module, state_dict: dict[str, torch.Tensor],
                     source: str | Path) -> None:
    """Raise :class:`CheckpointError` naming the first parameter whose name or shape differs.

    Entries a state saved by a former version lacks and the model's modules fill when they
    load it (their ``complete_former_state``) are not missing.
    """
    state_dict = dict(state_dict)
    for name, module in model.named_modules():
        complete = getattr(module, "complete_former_state", None)
        if complete is not None:
            complete(state_dict, f"{name}." if name else "")
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    extra = [k for k in state_dict if k not in own]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"the model has {len(missing)} tensor(s) the checkpoint lacks "
                         f"(e.g. '{missing[0]}')")
        if extra:
            parts.append(f"the checkpoint has {len(extra)} tensor(s) the model lacks "
                         f"(e.g. '{extra[0]}')")
        raise CheckpointError(
            f"checkpoint {source} is from another architecture: {'; '.join(parts)}. Use the "
            "config the checkpoint was trained with (it is stored inside it)."
        )
    for k, v in own.items():
        if tuple(state_dict[k].shape) != tuple(v.shape):
            raise CheckpointError(
                f"checkpoint {source} is from another architecture: '{k}' has shape "
                f"{tuple(state_dict[k].shape)} in the checkpoint but {tuple(v.shape)} in the "
                "model built from the config. Use the config the checkpoint was trained with."
            )


def _where(mask: torch.Tensor) -> str:
    """Where the first true entry of ``mask`` is: `` at index [i]`` (or ``[i, j]``...), and
    nothing for a single number."""
    if mask.dim() == 0:
        return ""
    flat = int(mask.reshape(-1).nonzero()[0, 0])
    index = []
    for size in reversed(mask.shape):
        index.append(flat % size)
        flat //= size
    return " at index [" + ", ".join(str(i) for i in reversed(index)) + "]"


def _slack(bound: torch.Tensor | float) -> torch.Tensor | float:
    """Rounding allowance of a bound held in float32 and compared in float64."""
    if isinstance(bound, torch.Tensor):
        return 1e-5 * bound.abs().clamp_min(1.0)
    return 1e-5 * max(1.0, abs(bound))


def first_invalid_tensor(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]
                         ) -> str | None:
    """Why the first tensor of ``state_dict`` (in ``model``'s order) that no trained model
    can hold is invalid, naming its key; ``None`` when every tensor is usable.

    A tensor is invalid when it holds NaN or an infinity (weights and buffers alike), or when
    it is a neuron parameter outside the range of :func:`parameter_ranges`; ``a`` must also
    stay at or below ``(tau_w - tau_u)^2 / (4 tau_u tau_w)`` of its neuron, the cap that keeps
    the sub-threshold dynamics from oscillating. Bounds allow float32 rounding.
    """
    ranges = parameter_ranges(model)
    keys = [k for k in model.state_dict() if k in state_dict]
    keys += [k for k in state_dict if k not in keys]
    for key in keys:
        value = state_dict[key]
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue  # masks and counters: every value is a number
        x = value.detach().double().cpu()
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            kinds = [f"{int(n)} {label}" for n, label in (
                (torch.isnan(x).sum(), "NaN"), ((x == float("inf")).sum(), "+inf"),
                ((x == float("-inf")).sum(), "-inf")) if int(n)]
            return (f"'{key}' holds {' and '.join(kinds)} of its {x.numel()} value(s)"
                    + (f" (the first{_where(bad)})" if x.dim() else ""))
        if key not in ranges:
            continue
        low, high, unit = ranges[key]
        outside = (x < low - _slack(low)) | (x > high + _slack(high))
        if bool(outside.any()):
            first = x.reshape(-1)[outside.reshape(-1)][0].item()
            return (f"'{key}' holds {int(outside.sum())} of its {x.numel()} value(s) outside "
                    f"its range [{low:g}, {high:g}]{unit} (the first, {first:g}{unit},"
                    f"{_where(outside)})")
        if key.endswith(".a") or key == "a":
            prefix = key[:-1]
            tau_u, tau_w = state_dict.get(prefix + "tau_u"), state_dict.get(prefix + "tau_w")
            if tau_u is None or tau_w is None:
                continue
            tau_u, tau_w = tau_u.detach().double().cpu(), tau_w.detach().double().cpu()
            cap = a_cap(tau_u, tau_w)
            over = x > cap + _slack(cap)
            if bool(over.any()):
                i = int(over.reshape(-1).nonzero()[0, 0])
                return (f"'{key}' holds {int(over.sum())} value(s) above the cap "
                        "(tau_w - tau_u)^2 / (4 tau_u tau_w) of their neuron, which keeps the "
                        f"neuron from oscillating (the first, {x.reshape(-1)[i].item():g},"
                        f"{_where(over)}, where the cap is {cap.reshape(-1)[i].item():g})")
    return None


def load_model_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor],
                     source: str | Path) -> None:
    """Load a checkpoint's ``state_dict`` into ``model`` after checking that it fits
    (:func:`check_compatible`) and that it holds a usable model (:func:`first_invalid_tensor`).

    Raises:
        CheckpointError: naming ``source`` and the first tensor that does not fit or is
            invalid (then nothing was loaded).
    """
    check_compatible(model, state_dict, source)
    problem = first_invalid_tensor(model, state_dict)
    if problem is not None:
        raise CheckpointError(
            f"checkpoint {source} holds no usable model: {problem}. The run that wrote it "
            "diverged, or the file was altered since; nothing was loaded. Use another "
            "checkpoint (a run folder keeps 'last.pt' and 'best.pt'), or train again with a "
            "lower optim.lr or with optim.grad_clip set."
        )
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:  # e.g. a tensor of the wrong dtype
        raise CheckpointError(
            f"checkpoint {source} does not fit its model: {' '.join(str(exc).split())}"
        ) from None


def capture_rng() -> dict[str, Any]:
    """States of the torch, CUDA, numpy (legacy global) and Python generators, as tensors and
    plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (third-party code may use it)
    py = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np_state = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                n["cached"])
    np.random.set_state(np_state)  # noqa: NPY002
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
