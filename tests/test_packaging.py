"""Packaging: one version everywhere, ``python -m sparse``, a light ``import sparse.snn``, the
stand-in that keeps SciPy working beside this package's name, licence and citation files."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import yaml

import sparse

REPO = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_version_is_one_number_everywhere():
    r = subprocess.run([sys.executable, "-m", "sparse", "--version"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"sparse {sparse.__version__}"
    # the installed distribution's metadata (pyproject reads the version from sparse.__version__)
    assert importlib.metadata.version("sparse-snn") == sparse.__version__
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert str(citation["version"]) == sparse.__version__


def test_python_dash_m_sparse_is_the_command():
    r = subprocess.run([sys.executable, "-m", "sparse", "--help"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: sparse ")
    for command in ("synth", "train", "evaluate", "demo", "analyze", "export", "predict"):
        assert f"    {command} " in r.stdout, command
    r = subprocess.run([sys.executable, "-m", "sparse", "no-such-command"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "invalid choice" in r.stderr


#: stacks that the spiking layers do not need: synthesis, HDF5, audio files, plotting, configs
HEAVY = ("matplotlib", "h5py", "scipy", "soundfile", "espeakng_loader", "wonderwords", "yaml",
         "nir", "tensorpac", "pandas", "sparse.data", "sparse.analysis", "sparse.train",
         "sparse.export")


def test_import_snn_loads_no_synthesis_hdf5_or_plotting_stack():
    r = _python("import sys, sparse.snn\nprint('\\n'.join(sorted(sys.modules)))")
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert {"torch", "sparse.snn", "sparse.kernels.fused"} <= loaded  # the test sees modules
    heavy = sorted(m for m in loaded if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY)))
    assert not heavy, f"import sparse.snn loaded {heavy}"


_RESAMPLE = """
import numpy as np
import sparse
from scipy.signal import resample_poly
{before}
x = np.sin(np.arange(300) / 7.0)
# the default ("kaiser", 5.0) window goes through SciPy's array-API probe, which reads
# sys.modules["sparse"].SparseArray (the pydata package's array class)
print(resample_poly(x, 2, 3).shape[0])
"""


def test_scipy_array_api_probe_works_beside_this_package():
    r = _python(_RESAMPLE.format(before=""))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "200"
    # why the stand-in exists: without it the same SciPy call fails inside its probe
    r = _python(_RESAMPLE.format(before="del sparse.SparseArray"))
    assert r.returncode != 0 and "AttributeError" in r.stderr and "SparseArray" in r.stderr, (
        "SciPy no longer looks up sparse.SparseArray: the stand-in in sparse/__init__.py may "
        "have become unnecessary")


def test_licence_and_citation_files():
    licence = (REPO / "LICENSE").read_text()
    assert licence.startswith("BSD 3-Clause License")
    assert "the sparse developers" in licence and "Neither the name of the copyright" in licence
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'license = "BSD-3-Clause"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["title"]
    assert cff["license"] == "BSD-3-Clause"
    for person in [*cff["authors"], *cff["preferred-citation"]["authors"]]:
        assert person.get("name") or person.get("family-names"), person
    paper = cff["preferred-citation"]
    assert paper["type"] == "article" and paper["doi"] == "10.3389/fnins.2024.1449181"
    assert paper["title"].startswith("Exploring neural oscillations during speech perception")
