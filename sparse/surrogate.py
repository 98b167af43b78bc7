"""Surrogate gradients for the Heaviside spike function.

The forward pass of every spiking neuron is ``s = H(u - theta)`` (a spike when the membrane
potential exceeds the threshold). ``H`` has a zero derivative almost everywhere, so training
replaces ``dH/dx`` by a smooth or box-shaped *surrogate* ``sigma'(x)`` with ``x = u - theta``.

Every surrogate here is a pure function ``derivative(x, scale) -> tensor`` so that the fused
time loop (``sparse.kernels``) and the autograd oracle evaluate exactly the same expression.
All surrogates have a peak value of 1 at ``x = 0`` (the original SPARSE code's boxcar has
height 1), so switching between them does not rescale the gradient as a whole.

======================  ======================================  =============  ================
name                    sigma'(x)                               scale means    default scale
======================  ======================================  =============  ================
``boxcar``              1 if -w/2 < x <= w/2 else 0             width w        1.0 (the original's)
``fast_sigmoid``        1 / (1 + k |x|)^2   (SuperSpike)        slope k        10.0
``arctan``              1 / (1 + (pi k x / 2)^2)                slope k        2.0
``triangle``            max(0, 1 - |x| / w)                     half-width w   1.0
``gaussian``            exp(-x^2 / (2 w^2))                     std w          0.5
======================  ======================================  =============  ================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = [
    "SURROGATES",
    "Surrogate",
    "SpikeFunction",
    "get_surrogate",
    "spike",
]


def boxcar(x: torch.Tensor, width: float) -> torch.Tensor:
    """Box of height 1 on ``(-width/2, width/2]`` (the original SPARSE code's surrogate for
    ``width = 1``)."""
    half = 0.5 * width
    return ((x > -half) & (x <= half)).to(x.dtype)


def fast_sigmoid(x: torch.Tensor, slope: float) -> torch.Tensor:
    """SuperSpike surrogate ``1 / (1 + slope |x|)^2``."""
    return (1.0 + slope * x.abs()).reciprocal().square()


def arctan(x: torch.Tensor, slope: float) -> torch.Tensor:
    """Derivative of ``arctan(pi slope x / 2)`` scaled to peak 1: ``1 / (1 + (pi slope x/2)^2)``."""
    return (1.0 + (0.5 * math.pi * slope * x).square()).reciprocal()


def triangle(x: torch.Tensor, half_width: float) -> torch.Tensor:
    """Triangle ``max(0, 1 - |x| / half_width)``."""
    return (1.0 - x.abs() / half_width).clamp_min(0.0)


def gaussian(x: torch.Tensor, std: float) -> torch.Tensor:
    """Unnormalised Gaussian ``exp(-x^2 / (2 std^2))``."""
    return torch.exp(-0.5 * (x / std).square())


SURROGATES: dict[str, tuple[Callable[[torch.Tensor, float], torch.Tensor], float]] = {
    "boxcar": (boxcar, 1.0),
    "fast_sigmoid": (fast_sigmoid, 10.0),
    "arctan": (arctan, 2.0),
    "triangle": (triangle, 1.0),
    "gaussian": (gaussian, 0.5),
}


@dataclass(frozen=True)
class Surrogate:
    """A named surrogate with its scale; ``derivative(x)`` evaluates ``sigma'(x)``."""

    name: str = "boxcar"
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.name not in SURROGATES:
            raise ValueError(
                f"unknown surrogate {self.name!r}; choose one of {sorted(SURROGATES)}"
            )
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"surrogate scale must be a positive finite number, got {self.scale}")

    @property
    def resolved_scale(self) -> float:
        return SURROGATES[self.name][1] if self.scale is None else float(self.scale)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        fn, _ = SURROGATES[self.name]
        return fn(x, self.resolved_scale)


def get_surrogate(surrogate: str | Surrogate, scale: float | None = None) -> Surrogate:
    """Return a :class:`Surrogate` from a name (with optional scale) or pass one through."""
    if isinstance(surrogate, Surrogate):
        if scale is not None:
            return Surrogate(surrogate.name, scale)
        return surrogate
    if not isinstance(surrogate, str):
        raise TypeError(f"surrogate must be a name or a Surrogate, got {type(surrogate).__name__}")
    return Surrogate(surrogate, scale)


class SpikeFunction(torch.autograd.Function):
    """``H(x)`` forward (a spike when ``x > 0``), ``grad * sigma'(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * ctx.surrogate.derivative(x), None


def spike(x: torch.Tensor, surrogate: str | Surrogate = "boxcar") -> torch.Tensor:
    """Spike function with a surrogate gradient. ``x = u - theta``, any shape."""
    return SpikeFunction.apply(x, get_surrogate(surrogate))
