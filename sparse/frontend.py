"""The encoders' shared front end: causal convolution over (time, frequency) and the
auditory-nerve population, plus the cortex and the pooling arithmetic.

The convolution is causal in time (``kernel_time - 1`` frames of left padding, none on the
right), so the output keeps the input's time axis (frame ``t`` sees frames ``t - k + 1 .. t``)
and a stream processed chunk by chunk only needs the last ``kernel_time - 1`` frames of the
previous chunk. In frequency it is a valid convolution with the given stride.

As in the original SPARSE code, in training whole frequency bins of the last conv block's
output are dropped (the same bins for every channel and step of an item: its ``Dropout2d``
over frequency), and the nerve drops entries of its input current; the nerve fibres are
numbered frequency-major (fibre ``f * channels + c``), so that a lateral recurrence in the
nerve links the channels of one frequency bin and its neighbouring bins.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .deprecation import renamed_attribute, renamed_keywords, renamed_method
from .kernels.projection import dropout_keep_mask
from .kernels.reference import NeuronState, end_step_index
from .masks import check_count
from .neuron import DEFAULT_NEURON, NeuronConfig
from .snn import (
    BATCHNORM_MOMENTUM,
    MultilayeredSpiking,
    SpikingNeurons,
    _check_dropout,
    _lengths_tensor,
    _valid_mask,
    check_sequence,
)

__all__ = ["ORIGINAL_ENCODER_NAMES", "AuditoryFrontEnd", "ConvBlock", "FrontEndState", "as_list",
           "check_features", "make_activation", "pooling_kernel"]


#: The original SPARSE code's encoder keywords -> this library's names (docs/original.md)
ORIGINAL_ENCODER_NAMES = {
    "auditory_use_lateral_rnn": "auditory_lateral",
    "cortex_use_lateral_rnn": "cortex_lateral",
    "adlif_tauu_lim": "tau_u_range",
    "adlif_tauw_lim": "tau_w_range",
    "adlif_a_lim": "a_range",
    "adlif_b_lim": "b_range",
    "adlif_use_normal_init": "normal_init",
    "adlif_threshold": "threshold",
}


@renamed_keywords(dt="dt_ms")
def pooling_kernel(dt_ms: float, rate_hz: float) -> int:
    """Steps per output frame: ``1000 / dt_ms / rate_hz`` (``dt_ms``: the step in ms;
    ``rate_hz``: the output frame rate in Hz), which must be a whole number."""
    if rate_hz <= 0:
        raise ValueError(f"phoneme_ctc_rate_hz must be positive, got {rate_hz}")
    frame_rate = 1000.0 / dt_ms
    kernel = frame_rate / rate_hz
    if abs(kernel - round(kernel)) > 1e-9 or round(kernel) < 1:
        raise ValueError(
            f"phoneme_ctc_rate_hz={rate_hz} does not divide the frame rate of {frame_rate:g} Hz "
            f"(dt={dt_ms} ms): the pooling kernel would be {kernel:g} steps; choose a rate such "
            f"that 1000 / dt / rate is a whole number"
        )
    return int(round(kernel))


def check_features(x: torch.Tensor, num_mel_bins: int, where: str) -> None:
    """An encoder's input check: features ``(batch, frames, num_mel_bins)``, floating point,
    at least one frame, finite (:func:`sparse.snn.check_sequence`)."""
    check_sequence(x, num_mel_bins, where, kind="features")


def as_list(value, name: str) -> list:
    """A list from a list, a tuple or a single int (the original accepts an int for one
    conv block)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer or a list of integers, got {value!r}") \
            from None


def make_activation(activation) -> nn.Module:
    """An instance of ``activation``: a module class such as ``torch.nn.LeakyReLU`` (called
    without arguments), or a function returning a module."""
    module = activation() if callable(activation) else None
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"activation must be a torch.nn.Module class such as torch.nn.LeakyReLU (or a "
            f"function returning a module), got {activation!r}"
        )
    return module


class ConvBlock(nn.Module):
    """Causal Conv2d over (time, frequency) -> LayerNorm over (channels, frequency) ->
    activation (LeakyReLU by default).

    Shapes: ``(batch, in_channels, time, freq)`` -> ``(batch, channels, time, freq_out)``.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: tuple[int, int],
                 frequency_stride: int, in_freq: int, activation=nn.LeakyReLU) -> None:
        super().__init__()
        self.kernel_time, self.kernel_freq = (
            check_count(k, f"auditory_kernel_size[{i}]") for i, k in enumerate(kernel_size))
        channels = check_count(channels, "auditory_channels")
        frequency_stride = check_count(frequency_stride, "auditory_frequency_stride")
        if self.kernel_freq > in_freq:
            raise ValueError(
                f"auditory_kernel_size has {self.kernel_freq} frequency taps but the input of "
                f"this conv block has only {in_freq} frequency bins"
            )
        self.out_freq = (in_freq - self.kernel_freq) // frequency_stride + 1
        self.channels = channels
        self.conv = nn.Conv2d(in_channels, channels, (self.kernel_time, self.kernel_freq),
                              stride=(1, frequency_stride))
        self.norm = nn.LayerNorm([channels, self.out_freq])
        self.activation = make_activation(activation)

    @property
    def context(self) -> int:
        """Past frames the block needs besides the current one."""
        return self.kernel_time - 1

    def forward(self, x: torch.Tensor, past: torch.Tensor | None = None) -> torch.Tensor:
        """``past`` holds the ``context`` frames before ``x`` (zeros at the start)."""
        if past is None:
            x = F.pad(x, (0, 0, self.context, 0))
        else:
            x = torch.cat([past, x], dim=2)
        y = self.conv(x)  # (batch, channels, time, freq)
        y = self.norm(y.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        return self.activation(y)


@dataclass
class FrontEndState:
    """Streaming state of :class:`AuditoryFrontEnd`."""

    conv_past: list[torch.Tensor]
    nerve: NeuronState
    cortex: list[NeuronState]


class AuditoryFrontEnd(nn.Module):
    """Features -> conv blocks -> auditory-nerve population -> cortex (spiking layers).

    The arguments are those of :class:`~sparse.encoder_asr.ASREncoder` (which see), without
    the head's, and with the neuron options as one :class:`~sparse.neuron.NeuronConfig`
    (``neuron``), which the nerve and the cortex share; the nerve has its own ``auditory_*``
    portions and lateral mode, and the dropout ``auditory_dropout`` (``None``: ``dropout``),
    applied twice as in the original: to whole frequency bins of the conv output, then to the
    nerve's input current.

    Shapes:
        ``(batch, frames, mel bins)`` -> spikes of ``nerve`` ``(batch, frames, F' * C)`` and
        of each cortex layer ``(batch, frames, size)``.
    """

    @renamed_keywords(dt="dt_ms")
    def __init__(
        self,
        num_mel_bins: int,
        auditory_channels: Sequence[int] | int,
        auditory_kernel_size: Sequence[int],
        auditory_frequency_stride: Sequence[int] | int,
        cortex_layer_sizes: Sequence[int],
        cortex_sfa_portions: Sequence[float],
        cortex_rnn_portions: Sequence[float],
        cortex_feedforward_portions: Sequence[float],
        dropout: float,
        dt_ms: float,
        *,
        auditory_sfa_portion: float = 0.0,
        auditory_rnn_portion: float = 0.0,
        auditory_lateral: bool = True,
        auditory_dropout: float | None = None,
        cortex_lateral: Sequence[bool] | bool = False,
        activation=nn.LeakyReLU,
        normalization: str = "batchnorm",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
        neuron: NeuronConfig = DEFAULT_NEURON,
    ) -> None:
        super().__init__()
        if int(num_mel_bins) != num_mel_bins or num_mel_bins < 1:
            raise ValueError(f"num_mel_bins must be a positive integer, got {num_mel_bins}")
        channels = as_list(auditory_channels, "auditory_channels")
        strides = as_list(auditory_frequency_stride, "auditory_frequency_stride")
        if not 1 <= len(channels) <= 2:
            raise ValueError(f"auditory_channels must list 1 or 2 conv blocks, got {channels}")
        if len(strides) != len(channels):
            raise ValueError(
                f"auditory_frequency_stride has {len(strides)} entries but auditory_channels "
                f"has {len(channels)}"
            )
        kernel = tuple(auditory_kernel_size)
        if len(kernel) != 2:
            raise ValueError(f"auditory_kernel_size must be (time, frequency), got {kernel}")
        self.num_mel_bins = int(num_mel_bins)
        self.dt_ms = float(dt_ms)
        self.auditory_dropout = _check_dropout(
            dropout if auditory_dropout is None else auditory_dropout, "auditory_dropout")
        blocks = []
        in_channels, freq = 1, self.num_mel_bins
        for ch, stride in zip(channels, strides, strict=True):
            block = ConvBlock(in_channels, ch, kernel, stride, freq, activation)
            blocks.append(block)
            in_channels, freq = block.channels, block.out_freq
        self.conv = nn.ModuleList(blocks)
        self.nerve_size = in_channels * freq
        # the fibres' numbering, saved with the state: a state saved before this buffer
        # existed numbered them channel-major (c * freq + f) and keeps doing so when loaded
        self.register_buffer("frequency_major", torch.tensor(True))
        if not isinstance(neuron, NeuronConfig):
            raise TypeError(f"neuron must be a NeuronConfig, got {type(neuron).__name__}")
        self.nerve = SpikingNeurons(self.nerve_size, sfa_portion=auditory_sfa_portion,
                                    rnn_portion=auditory_rnn_portion, lateral=auditory_lateral,
                                    dropout=self.auditory_dropout, dt=dt_ms, neuron=neuron)
        self.cortex = MultilayeredSpiking(
            self.nerve_size, list(cortex_layer_sizes), sfa_portions=list(cortex_sfa_portions),
            rnn_portions=list(cortex_rnn_portions), ff_portions=list(cortex_feedforward_portions),
            lateral=cortex_lateral, dropout=dropout, bias=True, normalization=normalization,
            dt=dt_ms, batchnorm_momentum=batchnorm_momentum, neuron=neuron,
        )
        self.population_names = ["nerve"] + [
            f"cortex{i + 1}" for i in range(len(cortex_layer_sizes))
        ]

    @classmethod
    def from_encoder(cls, arguments: Mapping[str, Any]) -> AuditoryFrontEnd:
        """The front end of an encoder whose constructor got ``arguments`` (its
        ``locals()``): the arguments of the front end's names, and the neuron options made
        one :class:`~sparse.neuron.NeuronConfig` (the encoders take them as separate
        keywords, as the original SPARSE code's do)."""
        names = [name for name in inspect.signature(cls.__init__).parameters
                 if name not in ("self", "neuron")]
        # the encoders keep the original SPARSE code's `dt` for the front end's `dt_ms`
        return cls(**{name: arguments["dt" if name == "dt_ms" else name] for name in names},
                   neuron=NeuronConfig.from_options(arguments))

    dt = renamed_attribute("dt", "dt_ms")

    @property
    def output_size(self) -> int:
        return self.cortex.layer_sizes[-1]

    def complete_former_state(self, state_dict: dict[str, torch.Tensor], prefix: str) -> None:
        """Add to ``state_dict`` (in place) what a state saved by this library's former
        version lacks: the fibres' numbering (channel-major then)."""
        key = prefix + "frequency_major"
        if key not in state_dict and prefix + "nerve.tau_u" in state_dict:
            state_dict[key] = torch.tensor(False)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.complete_former_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def initial_state(self, batch: int, *, dtype=None, device=None) -> FrontEndState:
        ref = self.nerve.tau_u
        dtype = dtype or ref.dtype
        device = device or ref.device
        past = []
        in_channels, freq = 1, self.num_mel_bins
        for block in self.conv:
            past.append(torch.zeros(batch, in_channels, block.context, freq, dtype=dtype,
                                    device=device))
            in_channels, freq = block.channels, block.out_freq
        return FrontEndState(past, self.nerve.initial_state(batch, dtype=dtype, device=device),
                             self.cortex.initial_state(batch, dtype=dtype, device=device))

    init_state = renamed_method("init_state", "initial_state")

    def run(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None,
        state: FrontEndState | None = None,
    ) -> tuple[dict[str, torch.Tensor], FrontEndState]:
        """Spikes of every population, time-major ``(frames, batch, neurons)``, and the state.

        Features of another floating dtype than the parameters (float64 features from NumPy
        for a float32 encoder) are cast to the parameters' dtype, the precision the encoder
        computes in anyway; the cast is differentiable. Values beyond the range of that dtype
        are an error, not infinities."""
        dtype = self.nerve.tau_u.dtype
        if x.dtype != dtype:
            cast = x.to(dtype)
            if not bool(torch.isfinite(cast).all()):
                raise ValueError(
                    f"{x.dtype} features reach {float(x.abs().max()):.3g}, beyond the range of "
                    f"{dtype}, the encoder's parameter dtype: scale the features, or convert "
                    f"the encoder with .to({x.dtype})")
            x = cast
        batch, steps, _ = x.shape
        valid = _valid_mask(lengths, batch, steps, x.device)
        lengths_t = _lengths_tensor(lengths, x.device)
        last = end_step_index(lengths_t, steps, batch, x.device)
        h = x.unsqueeze(1)  # (batch, 1, time, freq)
        new_past = []
        for i, block in enumerate(self.conv):
            past = None if state is None else state.conv_past[i]
            if block.context > 0:
                full = h if past is None else torch.cat([past, h], dim=2)
                new_past.append(_last_frames(full, block.context, lengths_t, past is None))
            else:
                new_past.append(h[:, :, :0])
            h = block(h, past)  # causal: padded frames never reach the valid ones
        if self.training and self.auditory_dropout > 0:
            # whole frequency bins of an item, across channels and steps (Dropout2d over bins)
            shape = (batch, 1, 1, h.shape[3])
            keep = dropout_keep_mask(shape, self.auditory_dropout, h.device).to(h.dtype)
            h = h * keep / (1 - self.auditory_dropout)
        # (time, batch, freq, channels) -> fibre f * channels + c, the original's numbering
        order = (2, 0, 3, 1) if bool(self.frequency_major) else (2, 0, 1, 3)
        current = h.permute(*order).reshape(steps, batch, self.nerve_size)
        nerve, nerve_state = self.nerve.run_time_major(
            current, valid, last, None if state is None else state.nerve)
        cortex, cortex_states = self.cortex.run_time_major(
            nerve, valid, last, None if state is None else state.cortex)
        spikes = dict(zip(self.population_names, [nerve, *cortex], strict=True))
        return spikes, FrontEndState(new_past, nerve_state, cortex_states)


def _last_frames(full: torch.Tensor, count: int, lengths: torch.Tensor | None,
                 padded_start: bool) -> torch.Tensor:
    """The ``count`` frames before each item's end, for the next chunk's context.

    ``full`` is ``(batch, channels, time, freq)``, including the previous context unless
    ``padded_start`` (then missing history is zeros).
    """
    if padded_start:
        full = F.pad(full, (0, 0, count, 0))
    if lengths is None:
        return full[:, :, full.shape[2] - count:]
    offset = count  # frames of context in front of the chunk's first frame
    ends = lengths.to(torch.long) + offset  # exclusive end of each item in ``full``
    idx = ends[:, None] - count + torch.arange(count, device=full.device)[None, :]
    idx = idx[:, None, :, None].expand(-1, full.shape[1], -1, full.shape[3])
    return torch.gather(full, 2, idx)
