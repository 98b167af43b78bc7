"""The compiled AdLIF time loop and the spike-sparse products, as autograd functions.

Same equations, same contract and same saved tensors as the torch loop in
:mod:`sparse.kernels.fused` (whose docstring derives the backward); the per-step work runs in
the C++ extension of :mod:`sparse.kernels.extension`:

* forward: one loop per batch item over all steps, the recurrent input summed from the rows
  of ``V^T`` that the previous step's spikes select; under ``torch.no_grad()`` nothing is
  saved (no membrane history, no checkpoints, no bool copy of the spikes);
* backward: the reverse-time recursion chunk by chunk (the surrogate derivative of a chunk
  is evaluated here, in torch, with the oracle's own function), the dense adjoint
  ``du_{t+1} V`` only where that derivative is non-zero;
* the weight gradient ``dV = sum_t du_t s_{t-1}^T`` from the indices of the spikes, or as one
  GEMM when the spikes are dense (:func:`use_spike_products`).

Spikes equal the dense computation's except where a membrane potential lies within rounding
of the threshold: a sum of the active rows of ``V^T`` adds the same numbers as the dense
product, in a different order than the BLAS does (the tests hold every implementation to
identical spikes on their grid).

Layout: time-major, ``(time, batch, neurons)``.
"""

from __future__ import annotations

import os

import torch

from ..surrogate import Surrogate
from .extension import extension
from .fused import CHECKPOINT_EVERY, run_adlif
from .reference import THRESHOLD, NeuronState

__all__ = [
    "SPIKE_PRODUCT_MAX_DENSITY",
    "AdLIFCompiledFunction",
    "adlif_compiled",
    "spike_density",
    "spike_linear",
    "sparse_spike_train",
    "spike_outer",
    "use_spike_products",
]

#: Above this share of active entries a spike train is multiplied by a dense GEMM instead of
#: by the sum of the selected rows (the crossover measured by ``benchmarks/bench_sparse.py``;
#: ``SPARSE_SPIKE_PRODUCT_MAX_DENSITY`` overrides it).
SPIKE_PRODUCT_MAX_DENSITY = float(os.environ.get("SPARSE_SPIKE_PRODUCT_MAX_DENSITY", "0.2"))


def spike_density(spikes: torch.Tensor) -> float:
    """Share of non-zero entries of a spike train (any shape, bool or float)."""
    return float(torch.count_nonzero(spikes)) / max(spikes.numel(), 1)


def use_spike_products(spikes: torch.Tensor) -> bool:
    """Whether products with the spike train ``spikes`` should run on the active indices: the
    extension is there, the tensor lives on the CPU, and its density is at most
    :data:`SPIKE_PRODUCT_MAX_DENSITY`."""
    if spikes.device.type != "cpu" or extension() is None:
        return False
    return spike_density(spikes) <= SPIKE_PRODUCT_MAX_DENSITY


def sparse_spike_train(x: torch.Tensor) -> bool:
    """Whether ``x`` (floating point, on the CPU, extension loaded) is a spike train (only 0
    and 1) sparse enough for the products from active indices; one pass over ``x``."""
    binary, ones = extension().spike_stats(x.contiguous())
    return bool(binary) and ones <= SPIKE_PRODUCT_MAX_DENSITY * x.numel()


def spike_linear(x_bool: torch.Tensor, weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``scale * x W^T`` for a binary ``x`` ``(..., inputs)`` given as bool, ``weight``
    ``(outputs, inputs)``; returns ``(..., outputs)`` in the weight's dtype."""
    ext = extension()
    rows = x_bool.reshape(-1, x_bool.shape[-1]).contiguous()
    out = ext.spike_linear(rows, weight.t().contiguous(), float(scale))
    return out.reshape(*x_bool.shape[:-1], weight.shape[0])


def spike_outer(x_bool: torch.Tensor, grad: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``scale * grad^T x`` for a binary ``x`` ``(..., inputs)`` (bool) and ``grad``
    ``(..., outputs)``: the gradient of ``W`` in ``x W^T``, ``(outputs, inputs)``."""
    ext = extension()
    rows = x_bool.reshape(-1, x_bool.shape[-1]).contiguous()
    grad_rows = grad.reshape(-1, grad.shape[-1]).contiguous()
    return ext.spike_outer(rows, grad_rows, float(scale)).t()


def _coefficients(alpha, beta, a, b) -> list[torch.Tensor]:
    """alpha, 1 - alpha, beta, a, b, (1 - beta) a, beta b: the extension's order."""
    return [t.contiguous() for t in (alpha, 1 - alpha, beta, a, b, (1 - beta) * a, beta * b)]


class AdLIFCompiledFunction(torch.autograd.Function):
    """The AdLIF recurrence on the compiled loop; arguments as
    :class:`sparse.kernels.fused.AdLIFFunction`."""

    # The arguments repeat AdLIFFunction.forward's on purpose: run_adlif applies either.
    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        current: torch.Tensor,
        alpha: torch.Tensor,
        beta: torch.Tensor,
        a: torch.Tensor,
        b: torch.Tensor,
        recurrent: torch.Tensor | None,
        u0: torch.Tensor,
        w0: torch.Tensor,
        s0: torch.Tensor,
        valid: torch.Tensor | None,
        last_step: torch.Tensor,
        surrogate: Surrogate,
        adaptive: bool,
    ):
        ext = extension()
        dtype = current.dtype
        needs_grad = any(ctx.needs_input_grad)
        coef = _coefficients(alpha, beta, a, b)
        recurrent_t = recurrent.t().contiguous() if recurrent is not None else None
        u0, w0, s0 = (t.to(dtype).contiguous() for t in (u0, w0, s0))
        spikes, spikes_bool, u_all, w_ckpt, u_final, w_final, s_final = ext.adlif_forward(
            current.contiguous(), coef, recurrent_t, u0, w0, s0, last_step.contiguous(),
            needs_grad, adaptive, CHECKPOINT_EVERY,
        )
        if valid is not None:
            spikes.mul_(valid.unsqueeze(-1))
        if needs_grad:
            ctx.save_for_backward(*coef, recurrent_t, u0, s0, u_all, spikes_bool, w_ckpt,
                                  valid, last_step)
            ctx.surrogate = surrogate
            ctx.adaptive = adaptive
            ctx.has_recurrent = recurrent is not None
        return spikes, u_final, w_final, s_final

    @staticmethod
    def backward(ctx, grad_spikes, grad_u_final, grad_w_final, grad_s_final):  # type: ignore[override]
        (alpha, one_minus_alpha, beta, a, b, q, c, recurrent_t, u0, s0, u_all, spikes_bool,
         w_ckpt, valid, last_step) = ctx.saved_tensors
        coef = [alpha, one_minus_alpha, beta, a, b, q, c]
        adaptive: bool = ctx.adaptive
        num_steps, batch, neurons = u_all.shape
        zeros = torch.zeros(batch, neurons, dtype=u_all.dtype, device=u_all.device)
        if grad_spikes is None:
            grad_spikes = torch.zeros_like(u_all)
        elif valid is not None:
            grad_spikes = grad_spikes * valid.unsqueeze(-1)
        grad_spikes = grad_spikes.contiguous()
        finals = [zeros if g is None else g.contiguous()
                  for g in (grad_u_final, grad_w_final, grad_s_final)]

        grad_current = torch.empty_like(u_all)
        du_next, dw_next = zeros.clone(), zeros.clone()
        sums = [zeros.clone() for _ in range(4)]  # alpha, beta, a, b: per item
        ext = extension()
        for start in reversed(range(0, num_steps, CHECKPOINT_EVERY)):
            end = min(start + CHECKPOINT_EVERY, num_steps)
            deriv = ctx.surrogate.derivative(u_all[start:end] - THRESHOLD).contiguous()
            w_start = w_ckpt[start // CHECKPOINT_EVERY] if adaptive else zeros
            ext.adlif_backward_chunk(
                grad_spikes, deriv, u_all, spikes_bool, u0, s0, w_start, coef, recurrent_t,
                last_step, *finals, du_next, dw_next, grad_current, *sums, start, end, adaptive,
            )
        grad_alpha = sums[0].sum(0)
        grad_beta = sums[1].sum(0) if adaptive else None
        grad_a = sums[2].sum(0) * (1 - beta) if adaptive else None
        grad_b = sums[3].sum(0) * beta if adaptive else None

        # the initial state: the same recursion, one step before t = 0
        du0 = grad_current[0]
        grad_u0 = alpha * du0
        grad_s0 = -alpha * du0
        if adaptive:
            grad_w0 = beta * dw_next - one_minus_alpha * du0
            grad_s0 = grad_s0 + c * dw_next
        else:
            grad_w0 = -one_minus_alpha * du0
        recurrent = None if recurrent_t is None else recurrent_t.t()
        if recurrent is not None:
            grad_s0 = grad_s0 + du0 @ recurrent

        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[5]:
            grad_recurrent = du0.T @ s0
            if num_steps > 1:
                later = spikes_bool[:-1]
                if use_spike_products(later):
                    grad_recurrent += spike_outer(later, grad_current[1:])
                else:
                    grad_recurrent.addmm_(grad_current[1:].reshape(-1, neurons).T,
                                          later.reshape(-1, neurons).to(u_all.dtype))

        return (grad_current, grad_alpha, grad_beta, grad_a, grad_b, grad_recurrent,
                grad_u0, grad_w0, grad_s0, None, None, None, None)


def adlif_compiled(*args, **kwargs) -> tuple[torch.Tensor, NeuronState]:
    """The AdLIF recurrence on the compiled loop; arguments and contract as
    :func:`sparse.kernels.fused.run_adlif` after ``function``."""
    return run_adlif(AdLIFCompiledFunction, *args, **kwargs)
