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

from typing import NamedTuple

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

    # The arguments repeat the oracle's (reference.adlif_reference) and are repeated by the
    # compiled loop's AdLIFCompiledFunction on purpose: run_adlif applies either class, and
    # the tests compare both with the oracle on the same inputs.
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
        adaptive: bool = ctx.adaptive
        coef = _Coefficients.of(alpha, beta, a, b, recurrent)

        if grad_spikes is None:
            grad_spikes = torch.zeros_like(u_all)
        elif valid is not None:
            grad_spikes = grad_spikes * valid.unsqueeze(-1)
        _, batch, neurons = u_all.shape
        zeros = torch.zeros(batch, neurons, dtype=u_all.dtype, device=u_all.device)
        finals = _FinalGrads(*(zeros if g is None else g
                               for g in (grad_u_final, grad_w_final, grad_s_final)))

        sweep = _AdjointSweep(coef, grad_spikes, finals, ctx.ends, adaptive, u_all)
        grads = sweep.run(u_all, spikes_bool, u0, s0, w_ckpt, ctx.surrogate)
        grad_u0, grad_w0, grad_s0 = _initial_state_grads(
            coef, sweep.grad_current[0], sweep.dw_next if adaptive else zeros, adaptive
        )
        grad_recurrent = None
        if recurrent is not None and ctx.needs_input_grad[5]:
            grad_recurrent = _recurrent_grad(sweep.grad_current, spikes_bool, s0)

        # one entry per forward argument: valid, last_step, surrogate and adaptive get None
        return (sweep.grad_current, grads.alpha, grads.beta if adaptive else None,
                grads.a if adaptive else None, grads.b if adaptive else None, grad_recurrent,
                grad_u0, grad_w0, grad_s0, None, None, None, None)


class _Coefficients(NamedTuple):
    """The per-neuron coefficients of the adjoint recursion, each ``(neurons,)``, with the
    derived ``1 - alpha``, ``q = (1 - beta) a`` and ``c = beta b``, and ``V`` (or None)."""

    alpha: torch.Tensor
    beta: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    one_minus_alpha: torch.Tensor
    q: torch.Tensor
    c: torch.Tensor
    recurrent: torch.Tensor | None

    @classmethod
    def of(cls, alpha: torch.Tensor, beta: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
           recurrent: torch.Tensor | None) -> _Coefficients:
        return cls(alpha, beta, a, b, 1 - alpha, (1 - beta) * a, beta * b, recurrent)


class _FinalGrads(NamedTuple):
    """Loss gradients of the returned final state ``u``, ``w``, ``s``, each
    ``(batch, neurons)``; zeros where autograd gave None."""

    u: torch.Tensor
    w: torch.Tensor
    s: torch.Tensor


class _CoefficientGrads(NamedTuple):
    """Gradients of ``alpha``, ``beta``, ``a``, ``b``, each ``(neurons,)``, accumulated in
    place chunk by chunk."""

    alpha: torch.Tensor
    beta: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor


class _AdjointSweep:
    """The reverse-time adjoint recursion of :meth:`AdLIFFunction.backward`, one checkpoint
    chunk at a time, latest chunk first.

    ``grad_current`` ``(time, batch, neurons)`` receives ``du_t`` for every step (it is the
    gradient of ``I``); ``du_next`` / ``dw_next`` ``(batch, neurons)`` carry ``du_{t+1}`` /
    ``dw_{t+1}`` from one step (and chunk) to the one before, and hold ``du_0`` / ``dw_0``
    once :meth:`run` returns.
    """

    def __init__(self, coef: _Coefficients, grad_spikes: torch.Tensor, finals: _FinalGrads,
                 ends: dict[int, torch.Tensor], adaptive: bool, u_all: torch.Tensor) -> None:
        self.coef = coef
        self.grad_spikes = grad_spikes
        self.finals = finals
        self.ends = ends
        self.adaptive = adaptive
        _, batch, neurons = u_all.shape
        # laid out as the saved u_all (and never after the incoming gradients, which may be
        # expanded views), so that the reductions below see the forward's memory order
        self.grad_current = torch.empty_like(u_all)
        self.du_next = torch.zeros(batch, neurons, dtype=u_all.dtype, device=u_all.device)
        self.dw_next = torch.zeros_like(self.du_next)
        self.ds = torch.empty_like(self.du_next)

    def run(self, u_all: torch.Tensor, spikes_bool: torch.Tensor, u0: torch.Tensor,
            s0: torch.Tensor, w_ckpt: torch.Tensor | None,
            surrogate: Surrogate) -> _CoefficientGrads:
        """Sweep all steps backwards; return the gradients of the coefficients."""
        coef = self.coef
        num_steps = u_all.shape[0]
        dtype = u_all.dtype
        grads = _CoefficientGrads(*(torch.zeros_like(p)
                                    for p in (coef.alpha, coef.beta, coef.a, coef.b)))
        for chunk_start in reversed(range(0, num_steps, CHECKPOINT_EVERY)):
            chunk_end = min(chunk_start + CHECKPOINT_EVERY, num_steps)
            u_chunk = u_all[chunk_start:chunk_end]
            s_chunk_prev = _previous(spikes_bool, s0, chunk_start, chunk_end, dtype)
            u_chunk_prev = _previous(u_all, u0, chunk_start, chunk_end, dtype)
            deriv = surrogate.derivative(u_chunk - THRESHOLD)
            w_prev = dw_chunk = None
            if self.adaptive:
                w_prev = _recompute_adaptation(w_ckpt[chunk_start // CHECKPOINT_EVERY],
                                               s_chunk_prev, u_chunk, coef)
                dw_chunk = torch.empty(u_chunk.shape, dtype=dtype, device=u_all.device)
            self._chunk(chunk_start, deriv, dw_chunk)
            du_chunk = self.grad_current[chunk_start:chunk_end]
            _accumulate_coefficient_grads(grads, coef, du_chunk, dw_chunk, u_chunk,
                                          u_chunk_prev, s_chunk_prev, w_prev)
        if self.adaptive:
            grads.a.mul_(1 - coef.beta)
            grads.b.mul_(coef.beta)
        return grads

    def _chunk(self, chunk_start: int, deriv: torch.Tensor,
               dw_chunk: torch.Tensor | None) -> None:
        """The recursion over one chunk's steps, last step first; ``deriv`` holds the chunk's
        ``D_t`` and ``dw_chunk`` receives its ``dw_t`` (adaptive populations only)."""
        alpha, beta, _, _, one_minus_alpha, q, c, recurrent = self.coef
        grad_spikes, ends, finals, ds = self.grad_spikes, self.ends, self.finals, self.ds
        du_next, dw_next = self.du_next, self.dw_next
        for k in reversed(range(deriv.shape[0])):
            t = chunk_start + k
            # ds_t = g_t + du_{t+1} V - alpha du_{t+1} + c dw_{t+1}
            if recurrent is not None:
                torch.addmm(grad_spikes[t], du_next, recurrent, out=ds)
            else:
                ds.copy_(grad_spikes[t])
            ds.addcmul_(alpha, du_next, value=-1)
            du = self.grad_current[t]
            if self.adaptive:
                ds.addcmul_(c, dw_next)
                # dw_t = beta dw_{t+1} - (1 - alpha) du_{t+1}
                dw = dw_chunk[k]
                torch.mul(beta, dw_next, out=dw)
                dw.addcmul_(one_minus_alpha, du_next, value=-1)
            if t in ends:
                items = ends[t]
                ds[items] += finals.s[items]
                if self.adaptive:
                    dw[items] += finals.w[items]
            # du_t = D_t ds_t + alpha du_{t+1} + q dw_t
            torch.mul(deriv[k], ds, out=du)
            du.addcmul_(alpha, du_next)
            if self.adaptive:
                du.addcmul_(q, dw)
            if t in ends:
                du[items] += finals.u[items]
            du_next = du
            if self.adaptive:
                dw_next = dw
        self.du_next, self.dw_next = du_next, dw_next


def _recompute_adaptation(w_start: torch.Tensor, s_chunk_prev: torch.Tensor,
                          u_chunk: torch.Tensor, coef: _Coefficients) -> torch.Tensor:
    """``w`` of a chunk's previous steps, recomputed from its checkpoint ``w_start`` with the
    forward's operations (hence the same bits): ``w_prev[k] = w_{chunk_start + k - 1}``,
    ``(length + 1, batch, neurons)``."""
    length = u_chunk.shape[0]
    w_prev = torch.empty((length + 1,) + tuple(w_start.shape), dtype=u_chunk.dtype,
                         device=u_chunk.device)
    w_prev[0].copy_(w_start)
    for k in range(length):
        w_prev[k + 1].copy_(w_prev[k])
        _adaptation_step(w_prev[k + 1], s_chunk_prev[k], u_chunk[k], coef.b, coef.beta, coef.q)
    return w_prev


def _accumulate_coefficient_grads(
    grads: _CoefficientGrads, coef: _Coefficients, du_chunk: torch.Tensor,
    dw_chunk: torch.Tensor | None, u_chunk: torch.Tensor, u_chunk_prev: torch.Tensor,
    s_chunk_prev: torch.Tensor, w_prev: torch.Tensor | None,
) -> None:
    """Add one chunk's share of the coefficient gradients to ``grads`` in place (those of
    ``a`` and ``b`` still lack their common factors ``1 - beta`` and ``beta``). All chunk
    tensors are ``(length, batch, neurons)``; ``w_prev`` has one step more."""
    if dw_chunk is None:
        grads.alpha.add_((du_chunk * (u_chunk_prev - s_chunk_prev)).sum((0, 1)))
        return
    w_before = w_prev[:-1]
    grads.alpha.add_((du_chunk * (u_chunk_prev - s_chunk_prev + w_before)).sum((0, 1)))
    grads.beta.add_((dw_chunk * (w_before + coef.b * s_chunk_prev - coef.a * u_chunk)).sum((0, 1)))
    grads.a.add_((dw_chunk * u_chunk).sum((0, 1)))
    grads.b.add_((dw_chunk * s_chunk_prev).sum((0, 1)))


def _initial_state_grads(
    coef: _Coefficients, du0: torch.Tensor, dw0: torch.Tensor, adaptive: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of the initial ``u``, ``w``, ``s`` ``(batch, neurons)``: the adjoint
    recursion taken one step before ``t = 0`` from ``du_0`` and ``dw_0``."""
    grad_u0 = coef.alpha * du0
    grad_s0 = -coef.alpha * du0
    if adaptive:
        grad_w0 = coef.beta * dw0 - coef.one_minus_alpha * du0
        grad_s0 = grad_s0 + coef.c * dw0
    else:
        grad_w0 = -coef.one_minus_alpha * du0
    if coef.recurrent is not None:
        grad_s0 = grad_s0 + du0 @ coef.recurrent
    return grad_u0, grad_w0, grad_s0


def _recurrent_grad(grad_current: torch.Tensor, spikes_bool: torch.Tensor,
                    s0: torch.Tensor) -> torch.Tensor:
    """Gradient of ``V`` ``(neurons, neurons)``: one GEMM of every step's ``du_t`` with the
    spikes ``s_{t-1}`` that fed it."""
    neurons = grad_current.shape[-1]
    s_prev_all = torch.empty_like(grad_current)
    s_prev_all[0].copy_(s0)
    s_prev_all[1:].copy_(spikes_bool[:-1])
    return grad_current.reshape(-1, neurons).T @ s_prev_all.reshape(-1, neurons)


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


# Same arguments as reference.adlif_reference (plus ``function``) on purpose: the fast loops
# and the oracle are interchangeable wherever the recurrence runs.
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
