"""The feed-forward half of a spiking layer: dropout -> linear -> normalisation, for all steps.

``project`` is the plain differentiable computation, used as is by the oracle.
:class:`CompactProjection` runs the same computation without autograd and keeps, for the
backward, only its input (as ``bool`` when the input is a spike train: 1 byte per value
instead of 4) and the dropout mask; the backward recomputes the projection and
differentiates it. This is activation checkpointing specialised to binary inputs, which is
what every layer after the first receives. With ``sparse`` (a spike train of low density on
the compiled path) the projection, its recomputation and the weight gradient run from the
indices of the active spikes (:func:`~sparse.kernels.compiled.spike_linear`,
:func:`~sparse.kernels.compiled.spike_outer`); the input gradient stays one dense GEMM.

Layout: time-major, ``(time, batch, features)``; ``valid`` is ``(time, batch)``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .compiled import spike_linear, spike_outer

__all__ = ["CompactProjection", "NormSpec", "dropout_keep_mask", "is_binary", "normalize",
           "surviving_spikes",
           "project", "spike_affine"]


@dataclass
class NormSpec:
    """What normalisation to apply after the linear map.

    ``kind`` is ``"batchnorm"`` (statistics over all valid (time, batch) rows, running
    statistics in eval mode), ``"layernorm"`` (over features, per step) or ``"none"``.
    ``weight`` and ``bias`` ``(out,)`` are its affine scale and shift (``None``: none).
    """

    kind: str
    eps: float = 1e-5
    momentum: float = 0.1
    training: bool = True
    running_mean: torch.Tensor | None = None
    running_var: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None


def dropout_keep_mask(shape: torch.Size, p: float, device: torch.device,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool mask of kept entries, each kept independently with probability ``1 - p``
    (``p`` resolved to 1/65536).

    Why not ``torch.rand(shape) >= p``: one float draw per entry made the masks of a 2 ms
    encoder's inputs (tens of millions of entries a step) a tenth of its training step.
    Here every 64-bit random word (torch's int64 draws carry 63 random bits) gives four
    entries: three from uniform 16-bit quarters, one from the top quarter, whose sign bit is
    always 0 (15 random bits, ``p`` resolved to 1/32768 there).
    """
    numel = math.prod(shape)
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device)
    words.random_(generator=generator)
    quarters = words.view(torch.int16).view(-1, 4)
    thresholds = [-32768 + round(p * 65536)] * 3
    top = 3 if sys.byteorder == "little" else 0
    thresholds.insert(top, round(p * 32768))
    limit = torch.tensor(thresholds, dtype=torch.int16, device=device)
    return (quarters >= limit).view(-1)[:numel].view(shape)


def is_binary(x: torch.Tensor) -> bool:
    """True when every value is exactly 0 or 1 (a spike train)."""
    return bool(((x == 0) | (x == 1)).all())


def _masked_moments(rows: torch.Tensor, weights: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor, int]:
    if weights is None:
        mean = rows.mean(0)
        var = (rows - mean).square().mean(0)
        return mean, var, rows.shape[0]
    count = weights.sum()
    mean = (rows * weights).sum(0) / count
    var = ((rows - mean).square() * weights).sum(0) / count
    return mean, var, int(count.item())


def project(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    norm: NormSpec,
    valid: torch.Tensor | None,
    update_running: bool,
    stats: dict | None = None,
) -> torch.Tensor:
    """``Norm(x W^T + bias)`` for ``x`` ``(time, batch, in)``; returns ``(time, batch, out)``.

    With ``valid`` given, padded rows never enter the batch statistics. For batch
    normalisation, ``stats`` (when given) receives the ``mean`` and ``invstd`` used.
    """
    return normalize(F.linear(x, weight, bias), norm, valid, update_running, stats)


def spike_affine(active: torch.Tensor, scale: float, weight: torch.Tensor,
                 bias: torch.Tensor | None) -> torch.Tensor:
    """``(scale * active) W^T + bias`` for the spike train ``active`` (bool: the spikes that
    survived dropout), from the indices of its active spikes; the input of :func:`normalize`
    as :func:`project` forms it."""
    z = spike_linear(active, weight, scale)
    return z if bias is None else z.add_(bias)


def normalize(
    z: torch.Tensor,
    norm: NormSpec,
    valid: torch.Tensor | None,
    update_running: bool,
    stats: dict | None = None,
) -> torch.Tensor:
    """The normalisation of :func:`project` applied to ``z`` ``(time, batch, out)``."""
    if norm.kind == "none":
        return z
    if norm.kind == "layernorm":
        return F.layer_norm(z, (z.shape[-1],), norm.weight, norm.bias, norm.eps)
    if norm.kind != "batchnorm":
        raise ValueError(f"unknown normalisation {norm.kind!r}")
    if norm.training:
        rows = z.reshape(-1, z.shape[-1])
        weights = None if valid is None else valid.reshape(-1, 1).to(z.dtype)
        mean, var, count = _masked_moments(rows, weights)
        if update_running and norm.running_mean is not None:
            with torch.no_grad():
                unbiased = var * (count / max(count - 1, 1))
                norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), norm.momentum)
                norm.running_var.lerp_(unbiased.to(norm.running_var.dtype), norm.momentum)
    else:
        mean, var = norm.running_mean, norm.running_var
        count = 0
    invstd = torch.rsqrt(var + norm.eps)
    if stats is not None:
        stats.update(mean=mean, invstd=invstd, count=count)
    out = (z - mean) * invstd
    if norm.weight is not None:
        out = out * norm.weight + norm.bias
    return out


def surviving_spikes(x_bool: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """The spikes that survive dropout, as bool."""
    return x_bool if keep is None else x_bool & keep


class CompactProjection(torch.autograd.Function):
    """:func:`project` with compact saved inputs and a recomputing, hand-written backward.

    The backward recomputes ``z = x W^T`` once and turns it into the normalised ``xhat`` in
    place; the batch-norm adjoint (masked to the valid rows)::

        dz = invstd gamma (g - sum(g)/n - xhat sum(g xhat)/n)        (training statistics)
        dz = invstd gamma g                                          (running statistics)

    followed by ``dW = dz^T x`` and ``dx = dz W`` as single GEMMs over all steps. Layer
    normalisation is differentiated by autograd on the recomputed projection.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: torch.Tensor,
        keep: torch.Tensor | None,
        keep_scale: float,
        compact: bool,
        norm: NormSpec,
        valid: torch.Tensor | None,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        norm_weight: torch.Tensor | None,
        norm_bias: torch.Tensor | None,
        sparse: bool = False,
    ) -> torch.Tensor:
        # norm_weight and norm_bias are norm.weight and norm.bias (which the forward uses),
        # given again as inputs so that autograd asks the backward for their gradients
        stats: dict = {}
        x_bool = x.to(torch.bool) if (compact or sparse) else None
        if sparse:
            z = spike_affine(surviving_spikes(x_bool, keep), keep_scale, weight, bias)
            out = normalize(z, norm, valid, update_running=True, stats=stats)
        else:
            dropped = x if keep is None else (x * keep).mul_(keep_scale)
            out = project(dropped, weight, bias, norm, valid, update_running=True,
                          stats=stats)
            del dropped
        stored = x_bool if compact else x
        ctx.sparse = sparse
        mean = stats.get("mean")
        invstd = stats.get("invstd")
        ctx.save_for_backward(stored, keep, valid, weight, bias, norm_weight, norm_bias,
                              mean, invstd)
        ctx.count = stats.get("count", 0)
        ctx.compact = compact
        ctx.keep_scale = keep_scale
        ctx.norm = norm
        ctx.dtype = x.dtype
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (stored, keep, valid, weight, bias, norm_weight, norm_bias, mean,
         invstd) = ctx.saved_tensors
        norm: NormSpec = ctx.norm
        if norm.kind == "layernorm":
            return CompactProjection._backward_autograd(ctx, grad_out)
        needs = ctx.needs_input_grad
        if ctx.sparse:
            active = surviving_spikes(stored.to(torch.bool), keep)

            def linear() -> torch.Tensor:
                return spike_affine(active, ctx.keep_scale, weight, bias)

            def weight_grad(rows: torch.Tensor) -> torch.Tensor:
                return spike_outer(active, rows, ctx.keep_scale)
        else:
            if ctx.compact:
                dropped = stored.to(ctx.dtype)
                if keep is not None:
                    dropped.mul_(keep).mul_(ctx.keep_scale)
            else:
                dropped = stored if keep is None else (stored * keep).mul_(ctx.keep_scale)

            def linear() -> torch.Tensor:
                return F.linear(dropped, weight, bias)

            def weight_grad(rows: torch.Tensor) -> torch.Tensor:
                return rows.T @ dropped.reshape(-1, dropped.shape[-1])
        out_features = weight.shape[0]
        grad_norm_weight = grad_norm_bias = None
        if norm.kind == "none":
            grad_z = grad_out
        else:
            xhat = linear().sub_(mean).mul_(invstd)
            g = grad_out if valid is None else grad_out * valid.unsqueeze(-1)
            g_rows = g.reshape(-1, out_features)
            xhat_rows = xhat.reshape(-1, out_features)
            sum_g = g_rows.sum(0)
            sum_g_xhat = (g_rows * xhat_rows).sum(0)
            if norm_weight is not None:
                grad_norm_weight = sum_g_xhat
                grad_norm_bias = sum_g
                gain = invstd * norm_weight
            else:
                gain = invstd
            if norm.training:
                count = ctx.count
                # dz = gain (g - sum_g / n - xhat sum_g_xhat / n), built in place in xhat
                grad_z = xhat.mul_(-sum_g_xhat / count).add_(g).sub_(sum_g / count).mul_(gain)
                if valid is not None:
                    grad_z.mul_(valid.unsqueeze(-1))
            else:
                grad_z = g * gain
            del g, g_rows, xhat_rows
        grad_rows = grad_z.reshape(-1, out_features)
        grad_weight = grad_bias = grad_x = None
        if needs[6]:
            grad_weight = weight_grad(grad_rows)
        if bias is not None and needs[7]:
            grad_bias = grad_rows.sum(0)
        if needs[0]:
            grad_x = grad_z @ weight
            if keep is not None:
                grad_x.mul_(keep).mul_(ctx.keep_scale)
        return (grad_x, None, None, None, None, None, grad_weight, grad_bias,
                grad_norm_weight if needs[8] else None, grad_norm_bias if needs[9] else None,
                None)

    @staticmethod
    def _backward_autograd(ctx, grad_out: torch.Tensor):
        stored, keep, valid, weight, bias, norm_weight, norm_bias, _, _ = ctx.saved_tensors
        needs = ctx.needs_input_grad
        x = stored.to(ctx.dtype) if ctx.compact else stored
        with torch.enable_grad():
            x_leaf = x.detach().requires_grad_(needs[0])
            params = []
            for tensor, need in zip((weight, bias, norm_weight, norm_bias), needs[6:10],
                                    strict=True):
                params.append(None if tensor is None else tensor.detach().requires_grad_(need))
            dropped = x_leaf if keep is None else x_leaf * keep * ctx.keep_scale
            # the normalisation's affine parameters as the leaves just made
            norm = dataclasses.replace(ctx.norm, weight=params[2], bias=params[3])
            out = project(dropped, params[0], params[1], norm, valid, update_running=False)
            leaves = [t for t in (x_leaf, *params) if t is not None and t.requires_grad]
            grads = torch.autograd.grad(out, leaves, grad_out) if leaves else ()
        by_leaf = {id(t): g for t, g in zip(leaves, grads, strict=True)}

        def grad_of(t):
            return None if t is None else by_leaf.get(id(t))

        return (grad_of(x_leaf), None, None, None, None, None,
                *(grad_of(p) for p in params), None)
