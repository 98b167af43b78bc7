"""Checkpoints that lose nothing: atomic writes, safe loads, clear errors.

A checkpoint is one ``torch.save`` file holding plain containers, numbers, strings and tensors
only, so that it loads with ``torch.load(weights_only=True)`` (no pickled code runs):

``format`` (:data:`FORMAT`), ``config`` (the resolved config as nested dicts), ``model``
(state dict), and for resuming ``optimizer``, ``scheduler``, ``rng`` (torch, CUDA, numpy and
Python generator states), ``progress`` (epoch, step in epoch, global step, running sums of the
current epoch, best metric so far), plus ``metrics`` of the epoch that wrote it.

Writes go to a temporary file in the same folder, are flushed to disk, then renamed over the
target (``os.replace``): a run killed while writing leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "FORMAT",
    "CheckpointError",
    "capture_rng",
    "check_compatible",
    "load_checkpoint",
    "restore_rng",
    "save_checkpoint",
]

FORMAT = "sparse-train-checkpoint/1"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the model; the message says which
    file and what is wrong."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a checkpoint is a normal file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
    return state


def check_compatible(model: torch.nn.Module, state_dict: dict[str, torch.Tensor],
                     source: str | Path) -> None:
    """Raise :class:`CheckpointError` naming the first parameter whose name or shape differs."""
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
