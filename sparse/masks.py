"""Connectivity and adaptation masks.

Masks are boolean tensors registered as buffers by the layers, so they are saved in the
``state_dict`` and a reloaded model has exactly the connectivity it was trained with. All
functions draw from ``torch``'s global RNG unless a ``generator`` is given, so one
``torch.manual_seed`` fixes every mask.
"""

from __future__ import annotations

import torch

__all__ = [
    "adaptation_mask",
    "check_count",
    "check_portion",
    "feedforward_mask",
    "lateral_radius",
    "recurrent_mask",
]


def check_portion(value: float, name: str) -> float:
    """Validate a share in [0, 1] and return it as a float."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def check_count(value: int, name: str, minimum: int = 1) -> int:
    """Validate a whole number of at least ``minimum`` (neurons, channels, taps) and return it
    as an int: ``3.5`` is refused, never truncated to 3."""
    try:
        whole = not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def adaptation_mask(
    num_neurons: int, sfa_portion: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Which neurons adapt (AdLIF) and which are plain LIF.

    Exactly ``int(sfa_portion * num_neurons)`` entries are True, at random positions.

    Returns:
        Bool tensor of shape ``(num_neurons,)``.
    """
    sfa_portion = check_portion(sfa_portion, "sfa_portion")
    count = int(sfa_portion * num_neurons)
    mask = torch.zeros(num_neurons, dtype=torch.bool)
    mask[torch.randperm(num_neurons, generator=generator)[:count]] = True
    return mask


def lateral_radius(num_neurons: int, rnn_portion: float) -> int:
    """Radius of the band kept by the lateral recurrent mode: ``int(p * N / 2)``."""
    return int(rnn_portion * num_neurons / 2)


def recurrent_mask(
    num_neurons: int,
    rnn_portion: float,
    lateral: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Kept entries of the recurrent matrix ``V`` (``V s`` = ``s @ V.T``).

    Random mode: exactly ``int(p * N * N)`` kept entries at random off-diagonal positions
    (capped at the ``N * (N - 1)`` off-diagonal entries, so ``p = 1`` keeps every one).
    Lateral mode: neuron ``i`` receives from neurons ``j`` with ``0 < |i - j| <= int(p N / 2)``.
    The diagonal is always zero: self-recurrence is the job of the leak and the adaptation.

    Returns:
        Bool tensor of shape ``(num_neurons, num_neurons)``.
    """
    rnn_portion = check_portion(rnn_portion, "rnn_portion")
    n = num_neurons
    if lateral:
        radius = lateral_radius(n, rnn_portion)
        idx = torch.arange(n)
        distance = (idx[:, None] - idx[None, :]).abs()
        return (distance > 0) & (distance <= radius)
    off_diagonal = (~torch.eye(n, dtype=torch.bool)).flatten().nonzero().squeeze(1)
    count = min(int(rnn_portion * n * n), off_diagonal.numel())
    chosen = off_diagonal[torch.randperm(off_diagonal.numel(), generator=generator)[:count]]
    mask = torch.zeros(n * n, dtype=torch.bool)
    mask[chosen] = True
    return mask.view(n, n)


def feedforward_mask(
    out_features: int,
    in_features: int,
    ff_portion: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Kept entries of the feed-forward matrix ``W``: each kept with probability ``ff_portion``.

    Returns:
        Bool tensor of shape ``(out_features, in_features)``.
    """
    ff_portion = check_portion(ff_portion, "ff_portion")
    if ff_portion >= 1.0:
        return torch.ones(out_features, in_features, dtype=torch.bool)
    draws = torch.rand(out_features, in_features, generator=generator)
    return draws < ff_portion
