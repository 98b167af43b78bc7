"""The spiking keyword-spotting encoder: the ASR encoder's front end and cortex, then a
non-spiking readout (:class:`~sparse.snn.ReadoutLayer`) instead of pooling and MLP.

The readout sums ``softmax(u_t)`` over the valid steps; the encoder returns the log of that
sum divided by the number of steps, i.e. the log of a probability vector. Since a
log-probability vector is its own log-softmax, ``torch.nn.functional.cross_entropy`` on the
output is exactly the negative log-likelihood of the time-averaged softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn

from .deprecation import renamed_method
from .frontend import ORIGINAL_ENCODER_NAMES, AuditoryFrontEnd, FrontEndState, check_features
from .keywords import original_keywords
from .snn import BATCHNORM_MOMENTUM, READOUT_TAU_STEPS, ReadoutLayer, _lengths_tensor, _valid_mask

__all__ = ["KWSEncoder", "KWSOutput", "KWSStreamState"]


class KWSOutput(NamedTuple):
    """``log_probs`` ``(batch, classes)`` and ``spikes``: population -> ``(batch, frames, n)``."""

    log_probs: torch.Tensor
    spikes: dict[str, torch.Tensor]


@dataclass
class KWSStreamState:
    front: FrontEndState
    readout_u: torch.Tensor
    total: torch.Tensor
    steps: int


def check_num_classes(num_classes: int) -> None:
    """Refuse a class count that is not a whole number of at least 2 (ValueError)."""
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")


def readout_log_probs(readout: ReadoutLayer, spikes: torch.Tensor, valid: torch.Tensor | None,
                      lengths: torch.Tensor | None) -> torch.Tensor:
    """The log of ``readout``'s softmax averaged over each item's valid steps,
    ``(batch, classes)``: the classifiers' output.

    Args:
        spikes: the last population's spikes, time-major ``(steps, batch, neurons)``.
        valid: ``(steps, batch)`` bool mask of the valid steps (None: all valid).
        lengths: ``(batch,)`` valid steps per item (None: all ``steps``).
    """
    steps, batch = spikes.shape[:2]
    total, _ = readout.run_time_major(spikes, valid)
    count = (torch.full((batch,), steps, device=spikes.device) if lengths is None
             else _lengths_tensor(lengths, spikes.device))
    return torch.log(total / count.unsqueeze(-1).to(total.dtype))


class KWSEncoder(nn.Module):
    """Spiking keyword spotter, with the original SPARSE code's constructor arguments and
    defaults (its keyword names are accepted too, see docs/original.md).

    Args: as :class:`~sparse.encoder_asr.ASREncoder` for the front end and cortex, plus
        num_classes: readout units (the original's ``readout_features``).
        readout_normalization: ``"batchnorm"``, ``"layernorm"`` or ``"none"``.
        readout_tau_steps: range of the readout's ``tau_u`` in steps (see
            :class:`~sparse.snn.ReadoutLayer`); the original's ``(5, 25)`` keeps the per-step
            decay in ``[e^(-1/5), e^(-1/25)]`` whatever ``dt``.
        readout_dropout: dropout on the readout's input (the original's readout has none).

    Shapes:
        ``forward(x, lengths)`` with ``x`` ``(batch, frames, num_mel_bins)`` returns a
        :class:`KWSOutput` whose ``log_probs`` ``(batch, num_classes)`` go to cross-entropy.
    """

    @original_keywords({**ORIGINAL_ENCODER_NAMES, "readout_features": "num_classes"})
    def __init__(
        self,
        # the original SPARSE code's arguments, order and defaults, which its ASR and KWS
        # encoders share; both are kept as they were so that its scripts run unchanged
        num_mel_bins: int = 80,
        auditory_channels: Sequence[int] | int = (16,),
        auditory_kernel_size: Sequence[int] = (7, 7),
        auditory_frequency_stride: Sequence[int] | int = (1,),
        auditory_sfa_portion: float = 0.0,
        auditory_rnn_portion: float = 0.0,
        auditory_lateral: bool = True,
        cortex_layer_sizes: Sequence[int] = (512, 512, 512),
        cortex_feedforward_portions: Sequence[float] = (1.0, 1.0, 1.0),
        cortex_rnn_portions: Sequence[float] = (0.5, 0.5, 0.5),
        cortex_sfa_portions: Sequence[float] = (0.5, 0.5, 0.5),
        cortex_lateral: Sequence[bool] | bool = False,
        num_classes: int = 512,
        activation=nn.LeakyReLU,
        dropout: float = 0.15,
        tau_u_range: Sequence[float] = (3.0, 25.0),
        tau_w_range: Sequence[float] = (30.0, 350.0),
        a_range: Sequence[float] = (-0.5, 5.0),
        b_range: Sequence[float] = (0.0, 2.0),
        normal_init: bool = False,
        threshold: float = 1.0,
        dt: float = 1.0,
        *,
        # (the neuron keywords repeat the other public constructors' on purpose: each keeps
        # the original SPARSE code's arguments, then these, so that every call stays valid;
        # the body makes them one NeuronConfig)
        readout_normalization: str = "batchnorm",
        readout_tau_steps: Sequence[float] = READOUT_TAU_STEPS,
        readout_dropout: float = 0.0,
        auditory_dropout: float | None = None,
        normalization: str = "batchnorm",
        surrogate="boxcar",
        surrogate_scale: float | None = None,
        implementation: str = "auto",
        recurrent_init: str = "linear",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
    ) -> None:
        super().__init__()
        check_num_classes(num_classes)
        self.front = AuditoryFrontEnd.from_encoder(locals())
        self.num_mel_bins = self.front.num_mel_bins
        self.num_classes = int(num_classes)
        self.dt = float(dt)
        self.readout = ReadoutLayer(self.front.output_size, self.num_classes,
                                    dropout=readout_dropout, normalization=readout_normalization,
                                    dt=dt, tau_steps=readout_tau_steps,
                                    implementation=self.front.nerve.implementation,
                                    batchnorm_momentum=batchnorm_momentum)

    @property
    def population_names(self) -> list[str]:
        return self.front.population_names

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> KWSOutput:
        check_features(x, self.num_mel_bins, type(self).__name__)
        batch, steps, _ = x.shape
        spikes_tm, _ = self.front.run(x, lengths)
        valid = _valid_mask(lengths, batch, steps, x.device)
        log_probs = readout_log_probs(self.readout, spikes_tm[self.population_names[-1]],
                                      valid, lengths)
        spikes = {name: s.transpose(0, 1) for name, s in spikes_tm.items()}
        return KWSOutput(log_probs, spikes)

    # ------------------------------------------------------------------ streaming

    def initial_state(self, batch: int, *, dtype=None, device=None) -> KWSStreamState:
        front = self.front.initial_state(batch, dtype=dtype, device=device)
        ref = front.nerve.u
        u = self.readout.initial_state(batch, dtype=ref.dtype, device=ref.device)
        return KWSStreamState(front, u, torch.zeros_like(u), 0)

    init_state = renamed_method("init_state", "initial_state")

    @torch.no_grad()
    def step(self, chunk: torch.Tensor, state: KWSStreamState
             ) -> tuple[torch.Tensor, KWSStreamState]:
        """Process ``chunk`` ``(batch, frames, mels)``; returns the log-probabilities of
        everything heard so far ``(batch, classes)`` and the new state. In eval mode the
        result after the last chunk equals :meth:`forward` on the whole input."""
        check_features(chunk, self.num_mel_bins, f"{type(self).__name__}.step")
        spikes_tm, front = self.front.run(chunk, None, state.front)
        total, u = self.readout.run_time_major(spikes_tm[self.population_names[-1]], None,
                                               state.readout_u)
        total = state.total + total
        steps = state.steps + chunk.shape[1]
        return torch.log(total / steps), KWSStreamState(front, u, total, steps)
