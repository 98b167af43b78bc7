"""The fused AdLIF time loop: forward without autograd, hand-written reverse-time backward.

Why a custom ``autograd.Function``: a plain autograd loop records a dozen graph nodes and
keeps half a dozen ``(batch, neurons)`` tensors alive for every time step; its backward walks
those nodes one by one. Here the forward runs in place on a few per-step buffers and keeps
only what the backward needs:

* the membrane potential ``u`` of every step, ``(time, batch, neurons)`` in the compute dtype;
* the spikes as ``bool`` (1 byte per neuron and step);
* the adaptation variable ``w`` every ``CHECKPOINT_EVERY`` steps only; the backward
  recomputes ``w`` inside each chunk from its checkpoint, with the very same operations as
  the forward, so the values are bit-identical.

The backward is the adjoint recursion of the equations (``D_t = sigma'(u_t - 1)``,
``c = beta b``, ``q = (1 - beta) a``, ``du``/``dw``/``ds`` are total derivatives of the
loss)::

    dw_t = beta dw_{t+1} - (1 - alpha) du_{t+1}
    ds_t = g_t + du_{t+1} V - alpha du_{t+1} + c dw_{t+1}
    du_t = D_t ds_t + alpha du_{t+1} + q dw_t

after which the gradients of ``I`` (= ``du``), ``V`` (one GEMM over all steps), ``alpha``,
``beta``, ``a`` and ``b`` (chunk-wise reductions) follow without any further loop.

Layout: time-major, ``(time, batch, neurons)``.
"""

from __future__ import annotations

import torch

from ..surrogate import Surrogate
from .reference import THRESHOLD, NeuronState

__all__ = ["CHECKPOINT_EVERY", "AdLIFFunction", "adlif_fused", "run_adlif"]

CHECKPOINT_EVERY = 64


def _end_steps(last_step: torch.Tensor) -> dict[int, torch.Tensor]:
    """Map step index -> items whose last valid step it is."""
    ends: dict[int, torch.Tensor] = {}
    for t in torch.unique(last_step).tolist():
        ends[int(t)] = (last_step == t).nonzero().squeeze(1)
    return ends


def _adaptation_step(
    w: torch.Tensor,
    s_prev: torch.Tensor,
    u: torch.Tensor,
    b: torch.Tensor,
    beta: torch.Tensor,
    q: torch.Tensor,
) -> None:
    """In place: ``w <- beta (w + b s_prev) + q u``, with ``q = (1 - beta) a``. Shared by the
    forward and the backward's recomputation, and written with the oracle's operations, so
    all three produce identical bits."""
    w.addcmul_(b, s_prev).mul_(beta).addcmul_(q, u)


class AdLIFFunction(torch.autograd.Function):
    """Fused AdLIF recurrence. See the module docstring for the equations."""

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
        num_steps, batch, neurons = current.shape
        dtype = current.dtype
        needs_grad = any(ctx.needs_input_grad)
        ends = _end_steps(last_step)

        one_minus_alpha = 1 - alpha
        q = (1 - beta) * a
        recurrent_t = recurrent.t() if recurrent is not None else None
        # spikes are written as floats straight into the output; s_prev is a view of it
        spikes = torch.empty_like(current)
        u_all = torch.empty_like(current) if needs_grad else None
        num_chunks = (num_steps + CHECKPOINT_EVERY - 1) // CHECKPOINT_EVERY
        w_ckpt = (
            torch.empty(num_chunks, batch, neurons, dtype=dtype, device=current.device)
            if (needs_grad and adaptive)
            else None
        )
        u_final, w_final, s_final = (torch.empty_like(u0) for _ in range(3))
        u_prev = u0
        u_buffer = torch.empty_like(u0)
        w = w0.clone()
        s_prev = s0

        for t in range(num_steps):
            if w_ckpt is not None and t % CHECKPOINT_EVERY == 0:
                w_ckpt[t // CHECKPOINT_EVERY].copy_(w)
            # u_t = alpha (u - s) - (1 - alpha) w + I_t + V s, with the oracle's operations
            u = u_all[t] if u_all is not None else u_buffer
            torch.sub(u_prev, s_prev, out=u).mul_(alpha)
            if adaptive:
                u.addcmul_(one_minus_alpha, w, value=-1)
            u.add_(current[t])
            if recurrent_t is not None:
                u.addmm_(s_prev, recurrent_t)
            if adaptive:
                _adaptation_step(w, s_prev, u, b, beta, q)
            s_t = spikes[t]
            torch.gt(u, THRESHOLD, out=s_t)
            if t in ends:
                items = ends[t]
                u_final[items] = u[items]
                w_final[items] = w[items]
                s_final[items] = s_t[items]
            u_prev, s_prev = u, s_t

        spikes_bool = spikes.to(torch.bool) if needs_grad else None
        if valid is not None:
            spikes.mul_(valid.unsqueeze(-1))
        if needs_grad:
            ctx.save_for_backward(alpha, beta, a, b, recurrent, u0, w0, s0, u_all, spikes_bool,
                                  w_ckpt, valid, last_step)
            ctx.surrogate = surrogate
            ctx.adaptive = adaptive
            ctx.ends = ends
        return spikes, u_final, w_final, s_final

    @staticmethod
    def backward(ctx, grad_spikes, grad_u_final, grad_w_final, grad_s_final):  # type: ignore[override]
        (alpha, beta, a, b, recurrent, u0, w0, s0, u_all, spikes_bool, w_ckpt, valid,
         last_step) = ctx.saved_tensors
        surrogate: Surrogate = ctx.surrogate
        adaptive: bool = ctx.adaptive
        ends: dict[int, torch.Tensor] = ctx.ends
        num_steps, batch, neurons = u_all.shape
        dtype = u_all.dtype

        if grad_spikes is None:
            grad_spikes = torch.zeros_like(u_all)
        elif valid is not None:
            grad_spikes = grad_spikes * valid.unsqueeze(-1)
        zeros = torch.zeros(batch, neurons, dtype=dtype, device=u_all.device)
        g_u_final = zeros if grad_u_final is None else grad_u_final
        g_w_final = zeros if grad_w_final is None else grad_w_final
        g_s_final = zeros if grad_s_final is None else grad_s_final

        one_minus_alpha = 1 - alpha
        q = (1 - beta) * a
        c = beta * b

        grad_current = torch.empty_like(u_all)  # du for every step
        du_next = torch.zeros(batch, neurons, dtype=dtype, device=u_all.device)
        dw_next = torch.zeros_like(du_next)
        ds = torch.empty_like(du_next)
        grad_alpha = torch.zeros_like(alpha)
        grad_beta = torch.zeros_like(beta)
        grad_a = torch.zeros_like(a)
        grad_b = torch.zeros_like(b)

        for chunk_start in reversed(range(0, num_steps, CHECKPOINT_EVERY)):
            chunk_end = min(chunk_start + CHECKPOINT_EVERY, num_steps)
            length = chunk_end - chunk_start
            u_chunk = u_all[chunk_start:chunk_end]
            s_chunk_prev = _previous(spikes_bool, s0, chunk_start, chunk_end, dtype)
            u_chunk_prev = _previous(u_all, u0, chunk_start, chunk_end, dtype)
            deriv = surrogate.derivative(u_chunk - THRESHOLD)
            if adaptive:
                # w of the chunk's previous steps, recomputed from the checkpoint:
                # w_prev[k] = w_{chunk_start + k - 1}
                w_prev = torch.empty(length + 1, batch, neurons, dtype=dtype, device=u_all.device)
                w_prev[0].copy_(w_ckpt[chunk_start // CHECKPOINT_EVERY])
                for k in range(length):
                    w_prev[k + 1].copy_(w_prev[k])
                    _adaptation_step(w_prev[k + 1], s_chunk_prev[k], u_chunk[k], b, beta, q)
                dw_chunk = torch.empty(length, batch, neurons, dtype=dtype, device=u_all.device)

            for k in reversed(range(length)):
                t = chunk_start + k
                # ds_t = g_t + du_{t+1} V - alpha du_{t+1} + c dw_{t+1}
                if recurrent is not None:
                    torch.addmm(grad_spikes[t], du_next, recurrent, out=ds)
                else:
                    ds.copy_(grad_spikes[t])
                ds.addcmul_(alpha, du_next, value=-1)
                du = grad_current[t]
                if adaptive:
                    ds.addcmul_(c, dw_next)
                    # dw_t = beta dw_{t+1} - (1 - alpha) du_{t+1}
                    dw = dw_chunk[k]
                    torch.mul(beta, dw_next, out=dw)
                    dw.addcmul_(one_minus_alpha, du_next, value=-1)
                if t in ends:
                    items = ends[t]
                    ds[items] += g_s_final[items]
                    if adaptive:
                        dw[items] += g_w_final[items]
                # du_t = D_t ds_t + alpha du_{t+1} + q dw_t
                torch.mul(deriv[k], ds, out=du)
                du.addcmul_(alpha, du_next)
                if adaptive:
                    du.addcmul_(q, dw)
                if t in ends:
                    du[items] += g_u_final[items]
                du_next = du
                if adaptive:
                    dw_next = dw

            du_chunk = grad_current[chunk_start:chunk_end]
            if adaptive:
                w_before = w_prev[:-1]
                grad_alpha += (du_chunk * (u_chunk_prev - s_chunk_prev + w_before)).sum((0, 1))
                grad_beta += (dw_chunk * (w_before + b * s_chunk_prev - a * u_chunk)).sum((0, 1))
                grad_a += (dw_chunk * u_chunk).sum((0, 1))
                grad_b += (dw_chunk * s_chunk_prev).sum((0, 1))
            else:
                grad_alpha += (du_chunk * (u_chunk_prev - s_chunk_prev)).sum((0, 1))

        if adaptive:
            grad_a *= 1 - beta
            grad_b *= beta

        # gradients of the initial state: the same recursion, one step before t = 0
        du0 = grad_current[0]
        dw0 = dw_next if adaptive else zeros
        grad_u0 = alpha * du0
        grad_s0 = -alpha * du0
        grad_w0 = None
        if adaptive:
            grad_w0 = beta * dw0 - one_minus_alpha * du0
            grad_s0 = grad_s0 + c * dw0
        else:
            grad_w0 = -one_minus_alpha * du0
        if recurrent is not None:
            grad_s0 = grad_s0 + du0 @ recurrent

        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[5]:
            s_prev_all = torch.empty_like(u_all)
            s_prev_all[0].copy_(s0)
            s_prev_all[1:].copy_(spikes_bool[:-1])
            grad_recurrent = grad_current.reshape(-1, neurons).T @ s_prev_all.reshape(-1, neurons)

        return (grad_current, grad_alpha, grad_beta if adaptive else None,
                grad_a if adaptive else None, grad_b if adaptive else None, grad_recurrent,
                grad_u0, grad_w0, grad_s0, None, None, None, None)


def _previous(
    values: torch.Tensor, initial: torch.Tensor, start: int, end: int, dtype: torch.dtype
) -> torch.Tensor:
    """``values[start-1 : end-1]`` with ``initial`` standing in for step -1, in ``dtype``."""
    if start > 0:
        return values[start - 1 : end - 1].to(dtype)
    out = torch.empty((end - start,) + tuple(values.shape[1:]), dtype=dtype, device=values.device)
    out[0].copy_(initial)
    out[1:].copy_(values[: end - 1])
    return out


def run_adlif(
    function: type[torch.autograd.Function],
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
    adaptive: bool = True,
) -> tuple[torch.Tensor, NeuronState]:
    """Run the AdLIF recurrence with ``function`` (:class:`AdLIFFunction` or the compiled
    loop's); same contract as :func:`sparse.kernels.reference.adlif_reference`.

    ``adaptive=False`` declares that ``a`` and ``b`` are all zero (a LIF-only population), so
    the adaptation variable is skipped entirely; it then stays at its initial value times
    ``beta`` powers, which for the zero initial state is zero.
    """
    num_steps, batch, _ = current.shape
    if last_step is None:
        last_step = torch.full((batch,), num_steps - 1, dtype=torch.long, device=current.device)
    if not adaptive and (state.w.requires_grad or bool((state.w != 0).any())):
        adaptive = True  # a carried non-zero w still decays and feeds u: keep the general path
    if valid is not None:
        valid = valid.to(current.dtype)
    spikes, u, w, s = function.apply(
        current, alpha, beta, a, b, recurrent, state.u, state.w, state.s, valid,
        last_step.to(torch.long), surrogate, adaptive,
    )
    return spikes, NeuronState(u, w, s)


def adlif_fused(*args, **kwargs) -> tuple[torch.Tensor, NeuronState]:
    """The AdLIF recurrence on the fused torch loop; arguments as :func:`run_adlif` after
    ``function``."""
    return run_adlif(AdLIFFunction, *args, **kwargs)
