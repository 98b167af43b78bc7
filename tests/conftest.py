"""Fixtures shared by the test modules that run the ``sparse`` command in subprocesses."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def env(data_dir, monkeypatch) -> dict[str, str]:
    """Environment for a ``sparse`` subprocess: the module's ``data_dir`` fixture as the
    corpus cache, one thread (two processes share the 2 cores)."""
    monkeypatch.setenv("SPARSE_DATA_DIR", str(data_dir))
    e = dict(os.environ)
    e["SPARSE_DATA_DIR"] = str(data_dir)
    e["OMP_NUM_THREADS"] = "1"
    return e
