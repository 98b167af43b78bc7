"""The spiking ASR encoder: log-mel features in, phoneme features at the CTC rate out.

Architecture: features ``(batch, frames, mels)`` -> causal Conv2d over (time, frequency) with
LayerNorm and LeakyReLU (one or two blocks) -> dropout of whole frequency bins ->
auditory-nerve population (one neuron per frequency x channel; by default LIF, without
recurrence) -> cortex (:class:`~sparse.snn.MultilayeredSpiking`) -> average pooling over time
down to ``phoneme_ctc_rate_hz`` (``1000 / dt / rate`` steps per output frame; a final partial
window is averaged over its valid steps) -> MLP to ``phoneme_features``. docs/original.md
lists where this differs from the original SPARSE code.

The time axis stays aligned with the input (the convolution is causal), and the output
lengths are exact: ``ceil(length / kernel)`` frames per item, never a frame of padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn as nn

from .deprecation import renamed_method
from .frontend import (
    ORIGINAL_ENCODER_NAMES,
    AuditoryFrontEnd,
    FrontEndState,
    check_features,
    make_activation,
    pooling_kernel,
)
from .keywords import original_keywords
from .lengths import length_mask, whole_lengths
from .masks import check_count
from .snn import BATCHNORM_MOMENTUM, _lengths_tensor

__all__ = ["ASREncoder", "ASRStreamState", "EncoderOutput", "pool_time"]


class EncoderOutput(NamedTuple):
    """``features`` ``(batch, out_frames, phoneme_features)``, their ``lengths`` ``(batch,)``,
    and ``spikes``: population name -> ``(batch, frames, neurons)``."""

    features: torch.Tensor
    lengths: torch.Tensor
    spikes: dict[str, torch.Tensor]


def pool_time(spikes: torch.Tensor, kernel: int, lengths: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Average ``(time, batch, n)`` over windows of ``kernel`` steps, valid steps only.

    Returns ``(out_frames, batch, n)`` and the output lengths ``ceil(lengths / kernel)``.
    """
    steps, batch, n = spikes.shape
    frames = -(-steps // kernel)
    padded = torch.zeros(frames * kernel, batch, n, dtype=spikes.dtype, device=spikes.device)
    if lengths is None:
        lengths = torch.full((batch,), steps, device=spikes.device, dtype=torch.long)
        padded[:steps] = spikes
    else:
        lengths = lengths.to(spikes.device)
        valid = length_mask(lengths, steps, time_major=True)
        padded[:steps] = spikes * valid.unsqueeze(-1).to(spikes.dtype)
    sums = padded.view(frames, kernel, batch, n).sum(1)
    starts = torch.arange(frames, device=spikes.device)[:, None] * kernel
    counts = (lengths[None, :] - starts).clamp(0, kernel)  # (frames, batch)
    pooled = sums / counts.clamp_min(1).unsqueeze(-1).to(spikes.dtype)
    return pooled, -(-lengths // kernel)


@dataclass
class ASRStreamState:
    """Streaming state of :class:`ASREncoder`: the front end's, and the spikes of the
    current, not yet complete pooling window ``(steps, batch, neurons)``."""

    front: FrontEndState
    pending: torch.Tensor


class ASREncoder(nn.Module):
    """Spiking speech encoder for CTC, with the original SPARSE code's constructor arguments
    and defaults (its keyword names are accepted too, see docs/original.md).

    Args:
        num_mel_bins: mel bins of the input features.
        auditory_channels: channels of each conv block (1 or 2 blocks), e.g. ``[16]`` (an
            int for one block).
        auditory_kernel_size: conv kernel ``(time, frequency)``.
        auditory_frequency_stride: frequency stride of each conv block.
        auditory_sfa_portion, auditory_rnn_portion, auditory_lateral: the auditory nerve's
            share of adaptive neurons, share of recurrent connections and lateral mode (see
            :class:`~sparse.snn.SpikingNeurons`); by default a LIF population without
            recurrence.
        cortex_layer_sizes, cortex_feedforward_portions, cortex_sfa_portions,
        cortex_rnn_portions, cortex_lateral: the cortex (see
            :class:`~sparse.snn.MultilayeredSpiking`).
        phoneme_num_layers: layers of the MLP head (0: the pooled cortex rates are the output).
        phoneme_features: width of the MLP head.
        phoneme_ctc_rate_hz: output frame rate; ``1000 / dt / rate`` must be whole.
        activation: activation of the conv blocks and the head, a module class such as
            ``torch.nn.LeakyReLU`` (the default).
        dropout: dropout in the front end (unless ``auditory_dropout``), the cortex and the
            head.
        tau_u_range, tau_w_range, a_range, b_range, normal_init, threshold: the neurons of the
            nerve and the cortex (see :class:`~sparse.snn.SpikingNeurons`).
        dt: step in ms (the frame hop of the features).
        auditory_dropout: dropout of the front end (frequency bins of the conv output, then
            the nerve's input current); ``None``: ``dropout``, as in the original.
        phoneme_layernorm: a LayerNorm after each linear map of the head (not in the
            original).
        normalization, surrogate, surrogate_scale, implementation, recurrent_init,
            batchnorm_momentum: passed to
            the spiking layers.

    Shapes:
        ``forward(x, lengths)`` with ``x`` ``(batch, frames, num_mel_bins)`` returns an
        :class:`EncoderOutput`.
    """

    @original_keywords(ORIGINAL_ENCODER_NAMES)
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
        cortex_sfa_portions: Sequence[float] = (0.5, 0.5, 0.5),
        cortex_rnn_portions: Sequence[float] = (0.5, 0.5, 0.5),
        cortex_lateral: Sequence[bool] | bool = False,
        phoneme_num_layers: int = 2,
        phoneme_features: int = 512,
        phoneme_ctc_rate_hz: float = 25,
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
        auditory_dropout: float | None = None,
        phoneme_layernorm: bool = False,
        normalization: str = "batchnorm",
        surrogate="boxcar",
        surrogate_scale: float | None = None,
        implementation: str = "auto",
        recurrent_init: str = "linear",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
    ) -> None:
        super().__init__()
        self.pool_kernel = pooling_kernel(dt, phoneme_ctc_rate_hz)
        self.front = AuditoryFrontEnd.from_encoder(locals())
        self.num_mel_bins = self.front.num_mel_bins
        self.dt = float(dt)
        if int(phoneme_num_layers) != phoneme_num_layers or phoneme_num_layers < 0:
            raise ValueError(f"phoneme_num_layers must be >= 0, got {phoneme_num_layers}")
        if phoneme_num_layers > 0:
            phoneme_features = check_count(phoneme_features, "phoneme_features")
        head: list[nn.Module] = []
        width = self.front.output_size
        for _ in range(int(phoneme_num_layers)):
            head.append(nn.Linear(width, phoneme_features))
            if phoneme_layernorm:
                head.append(nn.LayerNorm(phoneme_features))
            head += [make_activation(activation), nn.Dropout(dropout)]
            width = phoneme_features
        self.head = nn.Sequential(*head)
        self.output_size = width

    @property
    def population_names(self) -> list[str]:
        return self.front.population_names

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for inputs of ``lengths`` frames: ``ceil(lengths / pool_kernel)``,
        a long tensor of the shape of ``lengths``.

        Lengths follow the one rule of :mod:`sparse.lengths` (integers, or floats that are
        whole numbers); a fractional length raises ``ValueError``.
        """
        lens = torch.as_tensor(lengths)
        flat = lens.reshape(-1)
        # no padded length bounds the lengths here: any count from 0 up is valid
        whole_lengths(flat, flat.numel(), 2**62, minimum=0, what="frame")
        return -(-lens.to(torch.long) // self.pool_kernel)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        check_features(x, self.num_mel_bins, type(self).__name__)
        spikes_tm, _ = self.front.run(x, lengths)
        last = spikes_tm[self.population_names[-1]]
        lengths_t = _lengths_tensor(lengths, x.device)
        pooled, out_lengths = pool_time(last, self.pool_kernel, lengths_t)
        features = self.head(pooled.transpose(0, 1))
        frames = features.shape[1]
        mask = length_mask(out_lengths, frames)
        features = features * mask.unsqueeze(-1).to(features.dtype)
        spikes = {name: s.transpose(0, 1) for name, s in spikes_tm.items()}
        return EncoderOutput(features, out_lengths, spikes)

    # ------------------------------------------------------------------ streaming

    def initial_state(self, batch: int, *, dtype=None, device=None) -> ASRStreamState:
        """A fresh stream for ``batch`` items (all chunks of a stream have equal lengths
        across the batch)."""
        front = self.front.initial_state(batch, dtype=dtype, device=device)
        ref = front.nerve.u
        pending = torch.zeros(0, batch, self.front.output_size, dtype=ref.dtype,
                              device=ref.device)
        return ASRStreamState(front, pending)

    init_state = renamed_method("init_state", "initial_state")

    @torch.no_grad()
    def step(self, chunk: torch.Tensor, state: ASRStreamState
             ) -> tuple[torch.Tensor, ASRStreamState]:
        """Process ``chunk`` ``(batch, frames, mels)``; returns the output frames whose pooling
        window completed in this chunk ``(batch, n, phoneme_features)`` and the new state.

        Call :meth:`finish` at the end of the stream for the final partial window. Run in
        eval mode: then the concatenated outputs equal :meth:`forward` on the whole input.
        """
        check_features(chunk, self.num_mel_bins, f"{type(self).__name__}.step")
        spikes_tm, front = self.front.run(chunk, None, state.front)
        pending = torch.cat([state.pending, spikes_tm[self.population_names[-1]]], dim=0)
        complete = pending.shape[0] // self.pool_kernel * self.pool_kernel
        if complete:
            pooled, _ = pool_time(pending[:complete], self.pool_kernel, None)
            out = self.head(pooled.transpose(0, 1))
        else:
            out = pending.new_zeros(chunk.shape[0], 0, self.output_size)
        return out, ASRStreamState(front, pending[complete:])

    @torch.no_grad()
    def finish(self, state: ASRStreamState) -> torch.Tensor:
        """The last output frame from a partial pooling window (``(batch, 0 or 1, features)``)."""
        if state.pending.shape[0] == 0:
            return state.pending.new_zeros(state.pending.shape[1], 0, self.output_size)
        pooled = state.pending.mean(0, keepdim=True)
        return self.head(pooled.transpose(0, 1))
