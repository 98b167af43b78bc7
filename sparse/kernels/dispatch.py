"""Which time loop a layer runs: names, validation, and the choice made at run time.

* ``"auto"`` (default): the compiled loop (:mod:`sparse.kernels.compiled`) on CPU tensors when
  the C++ extension is available, otherwise the torch loop;
* ``"compiled"``: the compiled loop, an error where it cannot run;
* ``"torch"``: the fused torch loop (:mod:`sparse.kernels.fused`), the only fast loop for
  CUDA tensors;
* ``"reference"``: the plain-autograd oracle (:mod:`sparse.kernels.reference`).

``"fused"``, the torch loop's name before the compiled loop existed, stays accepted as a
deprecated alias of ``"auto"`` (it always meant "the fast default").
"""

from __future__ import annotations

import warnings

import torch

from .extension import build_error, extension

__all__ = ["IMPLEMENTATIONS", "check_implementation", "resolve_implementation"]

IMPLEMENTATIONS = ("auto", "compiled", "torch", "reference")
_DEPRECATED = {"fused": "auto"}


def check_implementation(name: str) -> str:
    """The canonical name of an implementation; a ``ValueError`` naming the accepted ones."""
    if name in _DEPRECATED:
        warnings.warn(f"implementation={name!r} is deprecated; use {_DEPRECATED[name]!r}",
                      DeprecationWarning, stacklevel=3)
        return _DEPRECATED[name]
    if name not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {name!r}")
    return name


def resolve_implementation(name: str, device: torch.device) -> str:
    """The loop that runs for ``name`` on tensors on ``device``: ``"compiled"``, ``"torch"`` or
    ``"reference"``."""
    if name in ("torch", "reference"):
        return name
    if device.type == "cpu" and extension() is not None:
        return "compiled"
    if name == "compiled":
        why = (f"the tensors are on {device.type}, and the compiled loop runs on the CPU only"
               if device.type != "cpu" else f"it could not be built: {build_error()}")
        raise RuntimeError(f"implementation='compiled' cannot run: {why}. Use 'auto' (which "
                           "falls back to the torch loop) or 'torch'.")
    return "torch"
