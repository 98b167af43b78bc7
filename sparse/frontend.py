"""The encoders' shared front end: causal convolution over (time, frequency) and the
auditory-nerve population, plus the cortex and the pooling arithmetic.

The convolution is causal in time (``kernel_time - 1`` frames of left padding, none on the
right), so the output keeps the input's time axis (frame ``t`` sees frames ``t - k + 1 .. t``)
and a stream processed chunk by chunk only needs the last ``kernel_time - 1`` frames of the
previous chunk. In frequency it is a valid convolution with the given stride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .kernels.reference import NeuronState, end_step_index
from .masks import check_count
from .snn import MultilayeredSpiking, SpikingNeurons, _valid_mask

__all__ = ["AuditoryFrontEnd", "ConvBlock", "FrontEndState", "check_features", "pooling_kernel"]


def pooling_kernel(dt: float, rate_hz: float) -> int:
    """Steps per output frame: ``1000 / dt / rate_hz``, which must be a whole number."""
    if rate_hz <= 0:
        raise ValueError(f"phoneme_ctc_rate_hz must be positive, got {rate_hz}")
    frame_rate = 1000.0 / dt
    kernel = frame_rate / rate_hz
    if abs(kernel - round(kernel)) > 1e-9 or round(kernel) < 1:
        raise ValueError(
            f"phoneme_ctc_rate_hz={rate_hz} does not divide the frame rate of {frame_rate:g} Hz "
            f"(dt={dt} ms): the pooling kernel would be {kernel:g} steps; choose a rate such "
            f"that 1000 / dt / rate is a whole number"
        )
    return int(round(kernel))


def check_features(x: torch.Tensor, num_mel_bins: int, where: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: features must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(
            f"{where}: features must have shape (batch, frames, mel bins), got {tuple(x.shape)}"
        )
    if x.shape[-1] != num_mel_bins:
        raise ValueError(
            f"{where}: features have {x.shape[-1]} mel bins but the encoder was built for "
            f"num_mel_bins={num_mel_bins}"
        )
    if x.shape[1] == 0:
        raise ValueError(f"{where}: features have no frames")
    if not x.is_floating_point():
        raise TypeError(f"{where}: features must be floating point, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: features contain NaN or infinite values")


class ConvBlock(nn.Module):
    """Causal Conv2d over (time, frequency) -> LayerNorm over (channels, frequency) -> LeakyReLU.

    Shapes: ``(batch, in_channels, time, freq)`` -> ``(batch, channels, time, freq_out)``.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: tuple[int, int],
                 frequency_stride: int, in_freq: int) -> None:
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
        self.activation = nn.LeakyReLU()

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
    """Features -> conv blocks -> auditory-nerve LIF population -> cortex (spiking layers).

    Shapes:
        ``(batch, frames, mel bins)`` -> spikes of ``nerve`` ``(batch, frames, C * F')`` and
        of each cortex layer ``(batch, frames, size)``.
    """

    def __init__(
        self,
        num_mel_bins: int,
        auditory_channels: Sequence[int],
        auditory_kernel_size: Sequence[int],
        auditory_frequency_stride: Sequence[int],
        cortex_layer_sizes: Sequence[int],
        cortex_sfa_portions: Sequence[float],
        cortex_rnn_portions: Sequence[float],
        cortex_feedforward_portions: Sequence[float],
        dropout: float,
        dt: float,
        cortex_lateral: Sequence[bool] | bool = False,
        normalization: str = "batchnorm",
        **neuron_kwargs,
    ) -> None:
        super().__init__()
        if int(num_mel_bins) != num_mel_bins or num_mel_bins < 1:
            raise ValueError(f"num_mel_bins must be a positive integer, got {num_mel_bins}")
        channels = list(auditory_channels)
        strides = list(auditory_frequency_stride)
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
        self.dt = float(dt)
        blocks = []
        in_channels, freq = 1, self.num_mel_bins
        for ch, stride in zip(channels, strides, strict=True):
            block = ConvBlock(in_channels, ch, kernel, stride, freq)
            blocks.append(block)
            in_channels, freq = block.channels, block.out_freq
        self.conv = nn.ModuleList(blocks)
        self.nerve_size = in_channels * freq
        surrogate_kwargs = {k: v for k, v in neuron_kwargs.items()
                            if k in ("surrogate", "surrogate_scale", "implementation",
                                     "tau_u_range")}
        self.nerve = SpikingNeurons(self.nerve_size, sfa_portion=0.0, rnn_portion=0.0, dt=dt,
                                    **surrogate_kwargs)
        self.cortex = MultilayeredSpiking(
            self.nerve_size, list(cortex_layer_sizes), sfa_portions=list(cortex_sfa_portions),
            rnn_portions=list(cortex_rnn_portions), ff_portions=list(cortex_feedforward_portions),
            dropout=dropout, dt=dt, lateral=cortex_lateral, normalization=normalization,
            **neuron_kwargs,
        )
        self.population_names = ["nerve"] + [
            f"cortex{i + 1}" for i in range(len(cortex_layer_sizes))
        ]

    @property
    def output_size(self) -> int:
        return self.cortex.layer_sizes[-1]

    def init_state(self, batch: int, *, dtype=None, device=None) -> FrontEndState:
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
        lengths_t = None if lengths is None else torch.as_tensor(lengths).to(x.device)
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
        current = h.permute(2, 0, 1, 3).reshape(steps, batch, self.nerve_size)
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
