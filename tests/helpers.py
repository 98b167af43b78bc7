"""Shared test helpers."""

from __future__ import annotations

import copy
import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
    if actual is None and expected is None:
        return  # no gradient on either side (e.g. a bias that batch normalisation cancels)
    if actual is None:
        actual = torch.zeros_like(expected)
    if expected is None:
        expected = torch.zeros_like(actual)
    diff = (actual - expected).norm().item()
    bound = atol + rtol * expected.norm().item()
    assert diff <= bound, (
        f"{name}: |diff| = {diff:.3e} > {bound:.3e} (|ref| = {expected.norm():.3e})"
    )


#: The fast time loops every oracle test runs: the torch loop, and the compiled loop with its
#: spike products forced on (every product from active indices) and forced off (dense GEMMs).
FAST_LOOPS = ("torch", "compiled-sparse", "compiled-dense")


def compiler_present() -> bool:
    """Whether a working C++ compiler is on this machine (the one PyTorch's extension tools
    use: ``$CXX``, else ``c++``); then the compiled loop must be available."""
    path = shutil.which(os.environ.get("CXX", "c++"))
    if path is None:
        return False
    probe = subprocess.run([path, "--version"], capture_output=True, timeout=60)
    return probe.returncode == 0


def use_loop(loop: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Prepare ``loop`` (one of :data:`FAST_LOOPS`, or ``"reference"``) and return its
    implementation name.

    The compiled variants need the C++ extension: where a compiler is present its absence is
    a failure, on a machine without one the test is skipped (the torch loop then runs).
    """
    if loop.startswith("compiled"):
        from sparse.kernels import compiled, extension

        if extension.extension() is None:
            if compiler_present():
                pytest.fail(f"a compiler is present but the extension is not available: "
                            f"{extension.build_error()}")
            pytest.skip("no C++ compiler on this machine: the compiled loop cannot be built")
        monkeypatch.setattr(compiled, "SPIKE_PRODUCT_MAX_DENSITY",
                            1.0 if loop == "compiled-sparse" else -1.0)
        return "compiled"
    return loop


def fast_and_reference(module: torch.nn.Module, implementation: str
                       ) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The module on ``implementation`` and an identical copy running the autograd oracle."""
    reference = copy.deepcopy(module)
    set_implementation(module, implementation)
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


#: a kws run small enough to take a few steps on the tiny corpus (each test adds its budget)
TINY_KWS_RUN = [
    "task=kws", "data.synth_preset=tiny", "features.n_mels=20", "features.hop_ms=20.0",
    "model.auditory_channels=[4]", "model.auditory_kernel_size=[3,5]",
    "model.auditory_frequency_stride=[2]", "model.cortex_layer_sizes=[32]",
    "model.cortex_sfa_portions=[0.5]", "model.cortex_rnn_portions=[0.5]",
    "model.cortex_feedforward_portions=[1.0]", "train.num_threads=1", "train.progress=false",
]


def kill_mid_epoch(train_args: list[str], env: dict[str, str], out: Path, sig: int,
                   delay_ms: float = 150) -> int:
    """Run ``sparse <train_args>`` slowed by ``delay_ms`` per step (tests/slow_train.py), send
    ``sig`` once a mid-epoch checkpoint of its second epoch exists in ``out``, and return the
    process's exit status."""
    from sparse.train.checkpoints import load_checkpoint
    from tests.slow_train import slowed

    proc = subprocess.Popen(slowed([sys.executable, "-m", "sparse.cli", *train_args], delay_ms),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = out / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"training ended before the kill: {proc.stderr.read()}"
            if last.is_file():
                p = load_checkpoint(last)["progress"]
                if p["epoch"] >= 1 and p["step_in_epoch"] > 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("no mid-epoch checkpoint appeared")
        proc.send_signal(sig)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode
