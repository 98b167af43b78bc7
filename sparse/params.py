"""Parameter accounting: trainable parameters with and without the structurally absent ones.

A masked-out entry of ``W`` or ``V`` is a stored number that can never change or matter, and
so are ``a``, ``b`` and ``tau_w`` of a LIF neuron. Papers on sparse SNNs report the
*effective* count; :func:`count_parameters` gives both, per module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from .snn import SpikingFCLayer, SpikingNeurons

__all__ = ["ParameterCount", "count_parameters", "format_parameter_table"]


@dataclass(frozen=True)
class ParameterCount:
    """``stored``: trainable numbers held; ``effective``: those that can take part."""

    module: str
    stored: int
    effective: int


def _effective_counts(model: nn.Module) -> dict[int, int]:
    """id(parameter) -> effective entries, for parameters with structural zeros."""
    counts: dict[int, int] = {}
    for sub in model.modules():
        if isinstance(sub, SpikingFCLayer):
            counts[id(sub.linear.weight)] = int(sub.feedforward_mask.sum())
        if isinstance(sub, SpikingNeurons):
            adaptive = int(sub.adaptation_mask.sum())
            for p in (sub.a, sub.b, sub.tau_w):
                counts[id(p)] = adaptive
            if sub.V is not None:
                counts[id(sub.V)] = int(sub.recurrent_mask.sum())
    return counts


def count_parameters(model: nn.Module, depth: int = 2) -> list[ParameterCount]:
    """Trainable parameters per module (names cut to ``depth`` dotted parts), then the total.

    Returns:
        One :class:`ParameterCount` per module prefix, in order of appearance, and a final
        row named ``"total"``.
    """
    effective = _effective_counts(model)
    rows: dict[str, list[int]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        prefix = ".".join(name.split(".")[:-1][:depth]) or "(root)"
        row = rows.setdefault(prefix, [0, 0])
        row[0] += param.numel()
        row[1] += effective.get(id(param), param.numel())
    out = [ParameterCount(k, v[0], v[1]) for k, v in rows.items()]
    out.append(ParameterCount("total", sum(r.stored for r in out), sum(r.effective for r in out)))
    return out


def format_parameter_table(rows: list[ParameterCount]) -> str:
    """A plain-text table of :func:`count_parameters` rows."""
    width = max(len(r.module) for r in rows)
    lines = [f"{'module':<{width}}  {'stored':>12}  {'effective':>12}"]
    for r in rows:
        lines.append(f"{r.module:<{width}}  {r.stored:>12,}  {r.effective:>12,}")
    return "\n".join(lines)
