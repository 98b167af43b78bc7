"""Plain-autograd implementation of the AdLIF equations: the oracle for the fused kernels.

Every operation is an ordinary differentiable torch op, one time step after another, so
autograd derives all gradients. It is slow and memory hungry by construction; the fused
kernels in :mod:`sparse.kernels.fused` are tested against it.

Layout: time-major, ``I`` is ``(time, batch, neurons)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..surrogate import Surrogate, spike

__all__ = ["NeuronState", "adlif_reference", "end_step_index", "zero_state"]

THRESHOLD = 1.0


class NeuronState(NamedTuple):
    """State of a population, each ``(batch, neurons)``: membrane ``u``, adaptation ``w``,
    and the spikes ``s`` of the last step (needed because the reset and the recurrence act
    one step later)."""

    u: torch.Tensor
    w: torch.Tensor
    s: torch.Tensor


def zero_state(batch: int, neurons: int, *, dtype: torch.dtype,
               device: torch.device) -> NeuronState:
    z = torch.zeros(batch, neurons, dtype=dtype, device=device)
    return NeuronState(z, z.clone(), z.clone())


def end_step_index(lengths: torch.Tensor | None, num_steps: int, batch: int,
                   device: torch.device) -> torch.Tensor:
    """Index of the last valid step of each item, ``(batch,)`` long."""
    if lengths is None:
        return torch.full((batch,), num_steps - 1, dtype=torch.long, device=device)
    return lengths.to(device=device, dtype=torch.long) - 1


# The fused and compiled loops (fused.run_adlif) take these arguments too, on purpose: this
# plain-autograd version is their oracle, kept separate so that it can check them.
def adlif_reference(
    current: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    recurrent: torch.Tensor | None,
    state: NeuronState,
    surrogate: Surrogate,
    valid: torch.Tensor | None = None,
    last_step: torch.Tensor | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """Run the AdLIF recurrence with autograd, step by step.

    For each step ``t`` (``dt`` is folded into ``alpha = exp(-dt/tau_u)``,
    ``beta = exp(-dt/tau_w)``)::

        u_t = alpha (u_{t-1} - s_{t-1}) - (1 - alpha) w_{t-1} + I_t + V s_{t-1}
        w_t = beta (w_{t-1} + b s_{t-1}) + (1 - beta) a u_t
        s_t = H(u_t - 1)

    Args:
        current: ``I``, ``(time, batch, neurons)``.
        alpha, beta, a, b: per-neuron coefficients, ``(neurons,)``.
        recurrent: ``V`` ``(neurons, neurons)`` (``V s`` = ``s @ V.T``) or None.
        state: initial :class:`NeuronState`.
        surrogate: surrogate gradient of ``H``.
        valid: ``(time, batch)`` bool, False on padded steps (their spikes are zeroed).
        last_step: ``(batch,)`` index of each item's last valid step; the returned state is
            taken there.

    Returns:
        Spikes ``(time, batch, neurons)`` and the state after each item's last valid step.
    """
    num_steps, batch, _ = current.shape
    u, w, s = state
    us, ws, ss = [], [], []
    for t in range(num_steps):
        # torch.addcmul / torch.addmm are plain differentiable ops; using them keeps the
        # rounding identical to the fused kernel's in-place versions, so spikes match exactly
        u_new = torch.addcmul(alpha * (u - s), 1 - alpha, w, value=-1) + current[t]
        if recurrent is not None:
            u_new = torch.addmm(u_new, s, recurrent.T)
        w = torch.addcmul(beta * (w + b * s), (1 - beta) * a, u_new)
        u = u_new
        s = spike(u - THRESHOLD, surrogate)
        us.append(u)
        ws.append(w)
        ss.append(s)
    u_all, w_all, s_all = torch.stack(us), torch.stack(ws), torch.stack(ss)
    if last_step is None:
        last_step = end_step_index(None, num_steps, batch, current.device)
    items = torch.arange(batch, device=current.device)
    final = NeuronState(u_all[last_step, items], w_all[last_step, items], s_all[last_step, items])
    if valid is not None:
        s_all = s_all * valid.unsqueeze(-1).to(s_all.dtype)
    return s_all, final
