"""The time loop of spiking populations.

* :mod:`.reference` - the equations in plain autograd, one op per term: the test oracle.
* :mod:`.fused` - a custom ``autograd.Function`` with an in-place forward and a hand-written
  reverse-time backward: what the layers run by default.
* :mod:`.projection` - dropout, linear map and normalisation of a layer's input, with a
  compact (bool) saved input when that input is a spike train.
"""

from .fused import AdLIFFunction, adlif_fused
from .projection import CompactProjection, NormSpec, project
from .reference import NeuronState, adlif_reference, zero_state

__all__ = [
    "AdLIFFunction",
    "CompactProjection",
    "NeuronState",
    "NormSpec",
    "adlif_fused",
    "adlif_reference",
    "project",
    "zero_state",
]
