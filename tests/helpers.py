"""Shared test helpers."""

from __future__ import annotations

import copy
import importlib
import os

import pytest
import torch

from sparse.snn import set_implementation


def relative_error(actual: torch.Tensor | None, expected: torch.Tensor | None) -> float:
    """``||actual - expected|| / ||expected||`` with a missing gradient read as zeros."""
    if actual is None and expected is None:
        return 0.0
    if actual is None:
        actual = torch.zeros_like(expected)
    if expected is None:
        expected = torch.zeros_like(actual)
    diff = (actual - expected).norm().item()
    scale = expected.norm().item()
    return diff / scale if scale > 0 else diff


def assert_grads_close(actual: torch.Tensor | None, expected: torch.Tensor | None, name: str,
                       rtol: float = 1e-5, atol: float = 0.0) -> None:
    """Norm-wise comparison: ``||a - e|| <= atol + rtol ||e||``.

    ``atol`` exists for gradients that are zero in exact arithmetic (e.g. a bias followed by
    batch normalisation), where both sides hold only rounding noise.
    """
    if actual is None:
        actual = torch.zeros_like(expected)
    if expected is None:
        expected = torch.zeros_like(actual)
    diff = (actual - expected).norm().item()
    bound = atol + rtol * expected.norm().item()
    assert diff <= bound, (
        f"{name}: |diff| = {diff:.3e} > {bound:.3e} (|ref| = {expected.norm():.3e})"
    )


def fused_and_reference(module: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The module (fused) and an identical copy running the autograd oracle."""
    reference = copy.deepcopy(module)
    set_implementation(module, "fused")
    set_implementation(reference, "reference")
    return module, reference


def reference_library(module: str, install_hint: str):
    """Import a reference implementation that a compatibility test compares against.

    Skipped when missing, except under ``SPARSE_REQUIRE_REFERENCES=1`` (set by
    ``scripts/test.sh``, which installs them all), where a missing reference is a failure.
    """
    if os.environ.get("SPARSE_REQUIRE_REFERENCES") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} missing: {install_hint}")
