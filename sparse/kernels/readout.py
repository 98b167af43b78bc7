"""The time loop of the non-spiking leaky readout (KWS): ``u_t = alpha u_{t-1} + d_t``.

The recurrence is linear, so it needs no step-by-step loop: within a block of ``L`` steps,
``u_{s+t} = alpha^(t+1) u_s + sum_{k<=t} alpha^(t-k) d_{s+k}``, one batched matrix product with
the ``(L, L)`` lower-triangular decay matrix of each output unit; blocks carry ``u`` from one to
the next, so memory stays ``O(L^2)`` per unit however long the input. Autograd differentiates
it as written (the decay matrix is ``exp(log(alpha) (t - k))``).

Shapes: ``drive`` ``(time, batch, units)``, ``alpha`` ``(units,)`` in (0, 1), ``valid``
``(time, batch)`` bool (``None``: all steps valid), ``state`` ``(batch, units)``.
"""

from __future__ import annotations

import torch

READOUT_BLOCK = 64  # steps per block: 64 x 64 decay entries per unit


def _is_prefix(valid: torch.Tensor) -> bool:
    """Whether every column of ``valid`` (time, batch) is ``True`` then ``False``."""
    steps = valid.shape[0]
    n_valid = valid.sum(0)
    expected = torch.arange(steps, device=valid.device).unsqueeze(1) < n_valid.unsqueeze(0)
    return bool(torch.equal(valid, expected))


def leaky_integrate_reference(
    drive: torch.Tensor,
    alpha: torch.Tensor,
    valid: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Step by step, in plain autograd (the oracle). Invalid steps hold ``u``.

    Returns ``(u for every step (time, batch, units), final u (batch, units))``.
    """
    u = drive.new_zeros(drive.shape[1:]) if state is None else state
    out = []
    for t in range(drive.shape[0]):
        u_new = alpha * u + drive[t]
        if valid is not None:
            u_new = torch.where(valid[t].unsqueeze(-1), u_new, u)
        out.append(u_new)
        u = u_new
    if not out:
        return drive.new_zeros(drive.shape), u
    return torch.stack(out), u


def leaky_integrate_blocked(
    drive: torch.Tensor,
    alpha: torch.Tensor,
    valid: torch.Tensor | None = None,
    state: torch.Tensor | None = None,
    block: int = READOUT_BLOCK,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same recurrence by blocks of matrix products (see the module docstring).

    ``valid`` must be a prefix mask per batch column (as from ``lengths``): steps after the
    last valid one are computed but not used, and the final ``u`` is the one at the last valid
    step (``state`` for an empty column). Other masks go to the step-by-step loop.
    """
    if valid is not None and not _is_prefix(valid):
        return leaky_integrate_reference(drive, alpha, valid, state)
    steps, batch, units = drive.shape
    u = drive.new_zeros(drive.shape[1:]) if state is None else state
    if steps == 0:
        return drive.new_zeros(drive.shape), u
    log_alpha = torch.log(alpha)  # (units,)
    lag = torch.arange(block, device=drive.device, dtype=drive.dtype)
    diff = lag.unsqueeze(1) - lag.unsqueeze(0)  # t - k
    causal = diff >= 0
    # clamp before exp: exp of the unused upper triangle must stay finite for the backward
    decay = torch.exp(log_alpha.view(units, 1, 1) * diff.clamp(min=0)) * causal  # (U, L, L)
    carry = torch.exp(log_alpha.unsqueeze(0) * (lag + 1).unsqueeze(1))  # (L, U): alpha^(t+1)
    # units first and contiguous: each block is a batch of (l, l) @ (l, batch) products that
    # BLAS takes without copies
    d_units = drive.permute(2, 0, 1).contiguous()  # (U, T, B)
    u_units = u.t()  # (U, B)
    pieces = []
    for start in range(0, steps, block):
        d = d_units[:, start:start + block]  # (U, l, B)
        n = d.shape[1]
        from_start = carry[:n].t().unsqueeze(-1) * u_units.unsqueeze(1)  # (U, l, B)
        u_block = torch.matmul(decay[:, :n, :n], d) + from_start
        pieces.append(u_block)
        u_units = u_block[:, -1]
    u_all = (torch.cat(pieces, dim=1) if len(pieces) > 1 else pieces[0]).permute(1, 2, 0)
    if valid is None:
        return u_all, u_all[-1]
    last = valid.sum(0) - 1  # (batch,)
    final = u_all[last.clamp(min=0), torch.arange(batch, device=drive.device)]
    final = torch.where((last >= 0).unsqueeze(-1), final, u)  # u: the initial state
    return u_all, final
