"""The spike-input classifier: input spike trains go straight into the cortex (no front end,
no auditory nerve), then the keyword spotter's non-spiking readout.

For spike corpora such as SHD and SSC, whose 700 channels already are the output of a cochlea
model: ``forward(spikes (batch, steps, num_inputs), lengths)`` returns the log of the
time-averaged readout softmax, as :class:`~sparse.encoder_kws.KWSEncoder` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from .deprecation import renamed_attribute, renamed_keywords
from .encoder_kws import KWSOutput, check_num_classes, readout_log_probs
from .kernels.reference import end_step_index
from .neuron import NeuronConfig, neuron_from_keywords
from .snn import (
    BATCHNORM_MOMENTUM,
    READOUT_TAU_STEPS,
    MultilayeredSpiking,
    ReadoutLayer,
    _lengths_tensor,
    _valid_mask,
    check_sequence,
)

__all__ = ["SpikeEncoder"]


class SpikeEncoder(nn.Module):
    """Cortex (stacked spiking layers) on input spikes, then a readout.

    Args:
        num_inputs: input channels (700 for SHD/SSC).
        num_classes: readout units.
        cortex_layer_sizes, cortex_sfa_portions, cortex_rnn_portions,
        cortex_feedforward_portions, dropout, normalization: the cortex, as in
            :class:`~sparse.encoder_asr.ASREncoder`.
        dt_ms: the time step in ms (one input bin).
        readout_normalization: normalisation of the readout's input current.
        readout_tau_steps: range of the readout's time constant in steps (the original
            SPARSE code's 5 to 25 by default, whatever ``dt_ms``).
        readout_dropout: dropout on the readout's input.
        cortex_lateral: lateral mode of each cortex layer (see
            :class:`~sparse.snn.MultilayeredSpiking`).
        neuron: the cortex's neuron options (:class:`~sparse.neuron.NeuronConfig`; ``None``:
            the encoders' defaults); its ``implementation`` also runs the readout.
        batchnorm_momentum: momentum of the batch normalisations' running statistics.
        **deprecated_options: the fields of :class:`~sparse.neuron.NeuronConfig` as separate
            keywords, and ``dt`` for ``dt_ms``: the former spellings, accepted for one
            release with a ``FutureWarning``.

    Shapes:
        ``forward(x (batch, steps, num_inputs), lengths (batch,))`` -> :class:`KWSOutput`
        with ``log_probs`` ``(batch, num_classes)`` and ``spikes`` ``cortex<i>`` ->
        ``(batch, steps, size_i)``.
    """

    @renamed_keywords(dt="dt_ms")
    def __init__(
        self,
        num_inputs: int = 700,
        num_classes: int = 20,
        cortex_layer_sizes: Sequence[int] = (256, 256),
        cortex_sfa_portions: Sequence[float] = (0.5, 0.5),
        cortex_rnn_portions: Sequence[float] = (0.5, 0.5),
        cortex_feedforward_portions: Sequence[float] = (1.0, 1.0),
        dropout: float = 0.1,
        dt_ms: float = 10.0,
        normalization: str = "batchnorm",
        readout_normalization: str = "batchnorm",
        *,
        readout_tau_steps: Sequence[float] = READOUT_TAU_STEPS,
        readout_dropout: float = 0.0,
        cortex_lateral: Sequence[bool] | bool = False,
        neuron: NeuronConfig | None = None,
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
        **deprecated_options: Any,
    ) -> None:
        super().__init__()
        # stacklevel 4: past this constructor and the wrapper of @renamed_keywords
        neuron = neuron_from_keywords(neuron, deprecated_options, type(self).__name__,
                                      stacklevel=4)
        check_num_classes(num_classes)
        self.num_inputs, self.num_classes = int(num_inputs), int(num_classes)
        self.dt_ms = float(dt_ms)
        self.cortex = MultilayeredSpiking(
            self.num_inputs, list(cortex_layer_sizes), sfa_portions=list(cortex_sfa_portions),
            rnn_portions=list(cortex_rnn_portions), ff_portions=list(cortex_feedforward_portions),
            lateral=cortex_lateral, dropout=dropout, bias=True, dt=dt_ms,
            normalization=normalization, batchnorm_momentum=batchnorm_momentum, neuron=neuron,
        )
        self.population_names = [f"cortex{i + 1}" for i in range(len(cortex_layer_sizes))]
        self.readout = ReadoutLayer(
            self.cortex.layer_sizes[-1], self.num_classes, dropout=readout_dropout, dt=dt_ms,
            normalization=readout_normalization, tau_steps=readout_tau_steps,
            implementation=neuron.implementation, batchnorm_momentum=batchnorm_momentum)

    dt = renamed_attribute("dt", "dt_ms")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> KWSOutput:
        check_sequence(x, self.num_inputs, type(self).__name__)
        batch, steps, _ = x.shape
        x = x.to(self.readout.tau_u.dtype)  # spike counts may come as integers
        valid = _valid_mask(lengths, batch, steps, x.device)
        last = end_step_index(_lengths_tensor(lengths, x.device), steps, batch, x.device)
        layers, _ = self.cortex.run_time_major(x.transpose(0, 1), valid, last, None)
        log_probs = readout_log_probs(self.readout, layers[-1], valid, lengths)
        spikes = {name: s.transpose(0, 1) for name, s in zip(self.population_names, layers,
                                                               strict=True)}
        return KWSOutput(log_probs, spikes)
