"""Fixtures shared by the test modules that run the ``sparse`` command or the SpeechBrain
recipes in subprocesses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def env(data_dir, monkeypatch) -> dict[str, str]:
    """Environment for a ``sparse`` subprocess: the module's ``data_dir`` fixture as the
    corpus cache, one thread (two processes share the 2 cores)."""
    monkeypatch.setenv("SPARSE_DATA_DIR", str(data_dir))
    e = dict(os.environ)
    e["SPARSE_DATA_DIR"] = str(data_dir)
    e["OMP_NUM_THREADS"] = "1"
    return e


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The tiny synthesised corpus (its TIMIT-layout folder), made once per test module."""
    from sparse.data.synth import SynthConfig, synthesize_corpus

    root = tmp_path_factory.mktemp("corpus") / "tiny"
    synthesize_corpus(SynthConfig.tiny(0), root=root, workers=2)
    return root


@pytest.fixture(scope="module")
def speechbrain_env() -> dict[str, str]:
    """Environment for a SpeechBrain recipe subprocess (fails, naming the set-up command,
    where SpeechBrain is not installed); one thread, as two processes share the 2 cores."""
    from .helpers import reference_library

    reference_library("speechbrain", "bash scripts/setup_speechbrain.sh")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # the recipes import sparse the way a user's copy would: from the installed package
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env
