"""Losses: firing rates and the firing-rate regulariser, CTC on phones, and greedy decoding.

Rates are in Hz: spikes summed over each item's valid frames and over the batch, divided by
the valid time ``frames * dt / 1000`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from ..rates import pooled_firing_rates

__all__ = [
    "ctc_greedy_decode",
    "ctc_loss",
    "firing_rates",
    "rate_regularizer",
]


def firing_rates(
    spikes: Mapping[str, torch.Tensor], lengths: torch.Tensor | None, dt_ms: float
) -> dict[str, torch.Tensor]:
    """Per-neuron firing rate of every population over the batch's valid frames.

    Args:
        spikes: population name -> spikes ``(batch, frames, neurons)`` (0/1 floats).
        lengths: valid frames per item ``(batch,)``; ``None``: all frames are valid.
        dt_ms: time step in ms.

    Returns:
        name -> rates in Hz ``(neurons,)`` (differentiable through the surrogate).
    """
    return pooled_firing_rates(spikes, dt_ms, lengths)


def rate_regularizer(
    rates: Mapping[str, torch.Tensor] | Iterable[torch.Tensor],
    r_min_hz: float,
    r_max_hz: float,
    weight: float = 0.5,
) -> torch.Tensor:
    """``weight * (mean relu(r_min - r) + mean relu(r - r_max))`` over all neurons.

    Args:
        rates: per-neuron rates in Hz (from :func:`firing_rates`), concatenated over
            populations.
        r_min_hz, r_max_hz: the band in Hz inside which a neuron costs nothing.
        weight: the factor in front (the paper's 0.5).

    Returns:
        A scalar tensor (in Hz, times ``weight``).
    """
    values = list(rates.values()) if isinstance(rates, Mapping) else list(rates)
    r = torch.cat([v.reshape(-1) for v in values])
    return weight * (F.relu(r_min_hz - r).mean() + F.relu(r - r_max_hz).mean())


def ctc_loss(
    logits: torch.Tensor,
    lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
) -> torch.Tensor:
    """Mean CTC loss per utterance (summed over its frames, not divided by target length).

    Args:
        logits: ``(batch, frames, classes)`` unnormalised scores (blank included).
        lengths: valid output frames per item ``(batch,)``.
        targets: ``(batch, max_target)`` class indices (never ``blank``), padded anyhow.
        target_lengths: ``(batch,)``.
        blank: index of the blank class.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (T, B, C)
    loss = F.ctc_loss(
        log_probs, targets, lengths.to(torch.long), target_lengths.to(torch.long),
        blank=blank, reduction="sum", zero_infinity=True,
    )
    return loss / logits.shape[0]


def ctc_greedy_decode(
    logits: torch.Tensor, lengths: torch.Tensor, blank: int = 0
) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks.

    Args:
        logits: ``(batch, frames, classes)``.
        lengths: valid frames per item ``(batch,)``.

    Returns:
        One list of class indices per item.
    """
    best = logits.argmax(dim=-1).cpu()
    out = []
    for b, n in enumerate(torch.as_tensor(lengths).tolist()):
        seq = best[b, : int(n)].tolist()
        hyp, prev = [], None
        for k in seq:
            if k != prev and k != blank:
                hyp.append(k)
            prev = k
        out.append(hyp)
    return out
