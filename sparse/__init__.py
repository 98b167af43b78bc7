"""sparse: spiking neural network speech encoders and their analysis.

Subpackages are imported lazily by the user (``from sparse.snn import MultilayeredSpiking``)
so that importing :mod:`sparse` stays cheap.
"""

__version__ = "0.1.0"
