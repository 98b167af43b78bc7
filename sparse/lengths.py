"""Per-item lengths of padded batches: their validation and their masks, in one place.

A padded batch holds items of different durations; ``lengths`` ``(batch,)`` gives each item's
number of valid entries (samples, frames or simulation steps) from the start, and everything
past it is padding. The layers, the features, the training loops and the firing rates all
check lengths with :func:`check_lengths` (or :func:`whole_lengths` for NumPy callers) and turn
them into masks with :func:`length_mask` (or :func:`length_mask_np`), so every entry point
accepts and refuses the same lengths.

The rule: lengths are integer-valued. Integer dtypes are taken as they are; floating-point
lengths are accepted when every value is a whole number (``16000.0``, as rounding relative
lengths gives) and refused otherwise (``0.5``: SpeechBrain's relative lengths must be
multiplied by the padded length first); NaN, inf, bool and complex lengths are refused.

This module imports only NumPy at load time: ``sparse.rates`` and ``sparse.analysis`` use it
without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["check_lengths", "length_mask", "length_mask_np", "whole_lengths"]


def _numpy_copy(lengths: Any) -> np.ndarray:
    if hasattr(lengths, "detach"):  # a torch tensor, on any device
        return lengths.detach().cpu().numpy()
    return np.asarray(lengths)


def whole_lengths(lengths: Any, batch: int, max_len: int, *, minimum: int = 1,
                  what: str = "step") -> np.ndarray:
    """Validate per-item lengths and return them as int64 ``(batch,)``.

    Args:
        lengths: ``(batch,)`` tensor, array or sequence of valid entries per item.
        batch: the batch size the lengths must match.
        max_len: the padded length (the largest length allowed).
        minimum: the smallest length allowed (0 where empty items are meaningful).
        what: the unit named in the messages ("sample", "frame", "step").

    Raises:
        ValueError: wrong shape, a value out of ``[minimum, max_len]``, NaN or inf, or a
            float that is not a whole number (the rule of this module's docstring).
        TypeError: bool, complex or non-numeric lengths.
    """
    lens = _numpy_copy(lengths)
    if lens.ndim != 1 or lens.shape[0] != batch:
        raise ValueError(
            f"lengths must have shape ({batch},), one {what} count per item; got "
            f"{tuple(lens.shape)}"
        )
    if lens.dtype.kind not in "iuf":
        raise TypeError(f"lengths must be integer {what} counts, got dtype {lens.dtype}")
    if lens.dtype.kind == "f":
        if not np.isfinite(lens).all():
            raise ValueError(f"lengths contain NaN or inf: {lens.tolist()}")
        if not np.array_equal(lens, np.round(lens)):
            raise ValueError(
                f"lengths must be whole numbers of {what}s (absolute, not SpeechBrain's relative "
                f"lengths in [0, 1]; multiply those by the padded length {max_len} and round); "
                f"got {lens.tolist()}"
            )
    bad = (lens < minimum) | (lens > max_len)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"lengths[{i}] = {int(lens[i])} is out of range: {what} lengths must lie in "
            f"[{minimum}, {max_len}] (the padded length)"
        )
    return lens.astype(np.int64)


def check_lengths(lengths: Any, batch: int, max_len: int, device: torch.device | str | None,
                  *, minimum: int = 1, what: str = "step") -> torch.Tensor:
    """:func:`whole_lengths` for torch callers: the validated lengths as a long tensor
    ``(batch,)`` on ``device``; ``None`` stands for full-length items (``max_len`` each).

    A tensor given is converted, not copied through NumPy: only the check reads it on the
    CPU (one small device-to-host copy, as any check that can raise must).
    """
    import torch  # here, so that importing this module does not load torch

    if lengths is None:
        return torch.full((batch,), max_len, dtype=torch.long, device=device)
    lens = lengths if isinstance(lengths, torch.Tensor) else torch.as_tensor(lengths)
    whole_lengths(lens, batch, max_len, minimum=minimum, what=what)
    return lens.to(device=device, dtype=torch.long)


def length_mask(lengths: torch.Tensor, max_len: int, *, time_major: bool = False
                ) -> torch.Tensor:
    """Boolean mask of the valid entries: True where the index is below the item's length.

    Args:
        lengths: ``(batch,)`` integer lengths (validated by the caller), on the mask's device.
        max_len: the padded length.
        time_major: ``False``: ``(batch, max_len)``; ``True``: ``(max_len, batch)``, the
            layout of the time-major layers.
    """
    import torch

    steps = torch.arange(max_len, device=lengths.device)
    if time_major:
        return steps[:, None] < lengths[None, :]
    return steps[None, :] < lengths[:, None]


def length_mask_np(lengths: np.ndarray, max_len: int) -> np.ndarray:
    """:func:`length_mask` for NumPy: bool ``(batch, max_len)``."""
    return np.arange(max_len)[None, :] < np.asarray(lengths)[:, None]
