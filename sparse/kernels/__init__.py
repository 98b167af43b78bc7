"""The time loop of spiking populations.

* :mod:`.reference` - the equations in plain autograd, one op per term: the test oracle.
* :mod:`.fused` - a custom ``autograd.Function`` with an in-place forward and a hand-written
  reverse-time backward: what the layers run by default.
* :mod:`.readout` - the non-spiking readout's linear recurrence, by blocks of matrix
  products (and its step-by-step oracle).
* :mod:`.projection` - dropout, linear map and normalisation of a layer's input, with a
  compact (bool) saved input when that input is a spike train.
"""

from .fused import AdLIFFunction, adlif_fused
from .projection import CompactProjection, NormSpec, project
from .readout import leaky_integrate_blocked, leaky_integrate_reference
from .reference import NeuronState, adlif_reference, zero_state

__all__ = [
    "AdLIFFunction",
    "CompactProjection",
    "NeuronState",
    "NormSpec",
    "adlif_fused",
    "adlif_reference",
    "leaky_integrate_blocked",
    "leaky_integrate_reference",
    "project",
    "zero_state",
]
