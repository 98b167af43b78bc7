"""sparse: spiking neural network speech encoders and their analysis.

Subpackages are imported lazily by the user (``from sparse.snn import MultilayeredSpiking``)
so that importing :mod:`sparse` stays cheap.

The import name ``sparse`` is also that of the pydata ``sparse`` package (sparse arrays): the
two cannot be installed in one environment, since whichever is imported second finds the
first under its name.
"""

from __future__ import annotations

import os
import typing

if typing.TYPE_CHECKING:
    import sparse.predict

__version__ = "0.1.0"


def load(checkpoint: str | os.PathLike[str], *, task: str | None = None,
         device: str = "cpu") -> sparse.predict.Model:
    """A trained model you can call: ``sparse.load("best.pt").predict(waveform, 16000)``.

    Imports :mod:`sparse.predict` (torch, the trainer) only when called, so that importing
    ``sparse`` or ``sparse.snn`` stays light; see :func:`sparse.predict.load`.
    """
    from .predict import load as _load

    return _load(checkpoint, task=task, device=device)


class SparseArray:
    """Never instantiated; exists only for a name clash.

    array-api-compat (vendored by SciPy) recognises the unrelated pydata ``sparse`` package by
    looking up ``sys.modules["sparse"].SparseArray``. Once this package is imported under the
    same name, that lookup would fail with an AttributeError inside SciPy (for instance in
    ``scipy.signal.resample_poly`` with its default window); with this class the check simply
    answers "not a pydata sparse array". ``tests/test_packaging.py`` runs that SciPy call with
    and without this class.
    """
