"""The spike-input classifier: input spike trains go straight into the cortex (no front end,
no auditory nerve), then the keyword spotter's non-spiking readout.

For spike corpora such as SHD and SSC, whose 700 channels already are the output of a cochlea
model: ``forward(spikes (batch, steps, num_inputs), lengths)`` returns the log of the
time-averaged readout softmax, as :class:`~sparse.encoder_kws.KWSEncoder` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from .encoder_kws import KWSOutput, check_num_classes, readout_log_probs
from .kernels.reference import end_step_index
from .neuron import NeuronConfig
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
        cortex_feedforward_portions, dropout, dt, normalization: the cortex, as in
            :class:`~sparse.encoder_asr.ASREncoder`.
        readout_normalization: normalisation of the readout's input current.
        readout_tau_steps: range of the readout's time constant in steps (the original
            SPARSE code's 5 to 25 by default, whatever ``dt``).
        readout_dropout: dropout on the readout's input.
        cortex_lateral, tau_u_range, tau_w_range, a_range, b_range, normal_init, threshold,
            surrogate, surrogate_scale, implementation, recurrent_init, batchnorm_momentum:
            the cortex's neurons, with the encoders' defaults (see
            :class:`~sparse.encoder_kws.KWSEncoder`).

    Shapes:
        ``forward(x (batch, steps, num_inputs), lengths (batch,))`` -> :class:`KWSOutput`
        with ``log_probs`` ``(batch, num_classes)`` and ``spikes`` ``cortex<i>`` ->
        ``(batch, steps, size_i)``.
    """

    def __init__(
        self,
        num_inputs: int = 700,
        num_classes: int = 20,
        cortex_layer_sizes: Sequence[int] = (256, 256),
        cortex_sfa_portions: Sequence[float] = (0.5, 0.5),
        cortex_rnn_portions: Sequence[float] = (0.5, 0.5),
        cortex_feedforward_portions: Sequence[float] = (1.0, 1.0),
        dropout: float = 0.1,
        dt: float = 10.0,
        normalization: str = "batchnorm",
        readout_normalization: str = "batchnorm",
        *,
        readout_tau_steps: Sequence[float] = READOUT_TAU_STEPS,
        readout_dropout: float = 0.0,
        cortex_lateral: Sequence[bool] | bool = False,
        # (the neuron keywords repeat the other public constructors' on purpose: every
        # encoder takes them one by one, with the same names and defaults; the body makes
        # them one NeuronConfig)
        tau_u_range: Sequence[float] = (3.0, 25.0),
        tau_w_range: Sequence[float] = (30.0, 350.0),
        a_range: Sequence[float] = (-0.5, 5.0),
        b_range: Sequence[float] = (0.0, 2.0),
        normal_init: bool = False,
        threshold: float = 1.0,
        surrogate="boxcar",
        surrogate_scale: float | None = None,
        implementation: str = "auto",
        recurrent_init: str = "linear",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        self.num_inputs, self.num_classes, self.dt = int(num_inputs), int(num_classes), float(dt)
        self.cortex = MultilayeredSpiking(
            self.num_inputs, list(cortex_layer_sizes), sfa_portions=list(cortex_sfa_portions),
            rnn_portions=list(cortex_rnn_portions), ff_portions=list(cortex_feedforward_portions),
            lateral=cortex_lateral, dropout=dropout, bias=True, dt=dt,
            normalization=normalization, batchnorm_momentum=batchnorm_momentum,
            neuron=NeuronConfig.from_options(locals()),
        )
        self.population_names = [f"cortex{i + 1}" for i in range(len(cortex_layer_sizes))]
        self.readout = ReadoutLayer(
            self.cortex.layer_sizes[-1], self.num_classes, dropout=readout_dropout, dt=dt,
            normalization=readout_normalization, tau_steps=readout_tau_steps,
            implementation=implementation, batchnorm_momentum=batchnorm_momentum)

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
