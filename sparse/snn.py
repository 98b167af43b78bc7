"""Spiking layers: AdLIF/LIF populations, fully connected spiking layers, stacks and readout.

Neuron model (per neuron; ``dt``, ``tau_u``, ``tau_w`` in ms; threshold ``theta``, 1 by
default)::

    alpha = exp(-dt / tau_u)              beta = exp(-dt / tau_w)
    I_t = Norm(W x_t + bias)              (one GEMM for all steps)
    u_t = alpha (u_{t-1} - s_{t-1}) - (1 - alpha) w_{t-1} + I_t + V s_{t-1}
    w_t = beta (w_{t-1} + b s_{t-1}) + (1 - beta) a u_t
    s_t = H(u_t - theta)                  (reset by subtraction of 1)

LIF neurons are those with ``a = b = 0`` (the adaptation mask); ``sfa_portion`` is the share
of AdLIF neurons. ``V`` is the recurrent matrix (``V s`` = ``s @ V.T``), masked to
``rnn_portion`` of its entries with a zero diagonal, or absent when ``rnn_portion = 0``.

The classes keep the original SPARSE code's signatures, defaults and keyword names
(:mod:`sparse.keywords`; docs/original.md).

Public tensors are batch-first, ``(batch, time, features)``; ``lengths`` ``(batch,)`` counts
the valid steps of each item. Internally everything runs time-major, which keeps each
step's slice contiguous.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from .kernels.compiled import adlif_compiled, sparse_spike_train
from .kernels.dispatch import IMPLEMENTATIONS, check_implementation, resolve_implementation
from .kernels.fused import adlif_fused
from .kernels.projection import (
    CompactProjection,
    NormSpec,
    dropout_keep_mask,
    is_binary,
    normalize,
    project,
    spike_affine,
    surviving_spikes,
)
from .kernels.readout import leaky_integrate_blocked, leaky_integrate_reference
from .kernels.reference import NeuronState, adlif_reference, end_step_index, zero_state
from .keywords import original_keywords
from .lengths import check_lengths, length_mask
from .masks import (
    adaptation_mask,
    check_count,
    check_portion,
    feedforward_mask,
    recurrent_mask,
)
from .neuron import (
    RECURRENT_INITS,
    NeuronConfig,
    check_positive,
    check_range,
    neuron_from_options,
)
from .surrogate import Surrogate

__all__ = [
    "IMPLEMENTATIONS",
    "NORMALIZATIONS",
    "READOUT_TAU_STEPS",
    "RECURRENT_INITS",
    "MultilayeredSpiking",
    "NeuronConfig",
    "NeuronState",
    "ReadoutLayer",
    "SpikingFCLayer",
    "SpikingNeurons",
    "a_cap",
    "attach_constraints",
    "check_sequence",
    "constrain_parameters",
    "parameter_ranges",
    "set_implementation",
]

NORMALIZATIONS = ("batchnorm", "layernorm", "none")
#: BatchNorm momentum of the spiking layers and the readout (the original's)
BATCHNORM_MOMENTUM = 0.05
#: ``a`` is kept this far below its no-oscillation bound (the original's margin)
A_CAP_MARGIN = 1e-5
#: the readout's default range of tau_u in steps: the original's decay range
#: [e^(-1/5), e^(-1/25)] per step, whatever the step
READOUT_TAU_STEPS = (5.0, 25.0)
#: MultilayeredSpiking's default portions: the original's, one per layer of its default 2
_ORIGINAL_PORTIONS = {"sfa_portions": (0.3, 0.5), "rnn_portions": (0.2, 0.3),
                     "ff_portions": (0.2, 0.3)}


# ----------------------------------------------------------------------------- validation


def _check_dropout(value: float, name: str) -> float:
    value = check_portion(value, name)
    if value >= 1.0:
        raise ValueError(f"{name} must be below 1")
    return value


def _initial_values(n: int, value_range: tuple[float, float], normal: bool) -> torch.Tensor:
    """``n`` initial values in ``value_range``: uniform, or (``normal``) the original's normal
    distribution centred on the range with a third of its half-width as standard deviation
    (99.7 % inside; the rest is clipped by the owner's ``constrain_``)."""
    low, high = value_range
    if normal:
        mean = 0.5 * (low + high)
        return torch.empty(n).normal_(mean, (high - mean) / 3)
    return torch.empty(n).uniform_(low, high)


# ----------------------------------------------------------------------------- parameter ranges
# Each constrained layer lists its ranges once (``ranges()``: parameter name -> (low, high,
# unit)); _clamp_to_ranges_ keeps the parameters in them, and the checkpoint check
# (sparse.train.checkpoints.first_invalid_tensor) reads the same ranges via parameter_ranges.


def a_cap(tau_u: torch.Tensor, tau_w: torch.Tensor) -> torch.Tensor:
    """The largest ``a`` per neuron that keeps the sub-threshold dynamics from oscillating:
    ``(tau_w - tau_u)^2 / (4 tau_u tau_w)`` (both ``(neurons,)``, in ms; dimensionless)."""
    return (tau_w - tau_u).square() / (4 * tau_u * tau_w)


@torch.no_grad()
def _clamp_to_ranges_(module: nn.Module) -> None:
    """Clamp every parameter of ``module.ranges()`` into its range, in place."""
    for name, (low, high, _) in module.ranges().items():
        getattr(module, name).clamp_(low, high)


def parameter_ranges(model: nn.Module) -> dict[str, tuple[float, float, str]]:
    """The range every constrained neuron parameter of ``model`` is kept in (its layer's
    ``constrain_``), by state-dict key: ``(low, high, unit)``.

    ``tau_u`` and ``tau_w`` (ms) and ``a`` and ``b`` of each spiking population, and ``tau_u``
    of a readout; ``a`` is further capped per neuron by :func:`a_cap`.
    """
    ranges: dict[str, tuple[float, float, str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, (SpikingNeurons, ReadoutLayer)):
            prefix = f"{name}." if name else ""
            ranges.update({prefix + key: r for key, r in module.ranges().items()})
    return ranges


def _make_norm(normalization: str, size: int, momentum: float) -> nn.Module | None:
    if normalization == "batchnorm":
        return nn.BatchNorm1d(size, momentum=check_positive(momentum, "batchnorm_momentum"))
    if normalization == "layernorm":
        return nn.LayerNorm(size)
    return None


def _norm_spec(norm: nn.Module | None, training: bool,
               folded_bias: torch.Tensor | None = None) -> NormSpec:
    """What the projection kernels need of a layer's normalisation ``norm`` (built by
    :func:`_make_norm`): its :class:`NormSpec`, with its affine weight and bias ``(size,)``.

    In training, a batch normalisation counts the batch in ``num_batches_tracked``, as
    ``nn.BatchNorm1d`` itself would. ``folded_bias``: the linear bias left out of the sum,
    which the running mean (used in eval mode) contains, so it is subtracted from it here.
    """
    if norm is None:
        return NormSpec("none")
    if isinstance(norm, nn.LayerNorm):
        return NormSpec("layernorm", eps=norm.eps, weight=norm.weight, bias=norm.bias)
    use_batch_stats = training or norm.running_mean is None
    if training and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
    running_mean = norm.running_mean
    if not use_batch_stats and folded_bias is not None:
        running_mean = running_mean - folded_bias
    spec = NormSpec("batchnorm", eps=norm.eps, momentum=norm.momentum if norm.momentum else 0.1,
                    training=use_batch_stats, running_mean=running_mean,
                    running_var=norm.running_var, weight=norm.weight, bias=norm.bias)
    return spec


#: the wording of :func:`check_sequence`'s messages: a layer's input, an encoder's features
_SEQUENCE_WORDS = {
    "input": {"noun": "input", "has": "has", "time": "time", "steps": "time steps",
              "channels": "features", "contains": "contains",
              "expects": "the layer expects {size}"},
    "features": {"noun": "features", "has": "have", "time": "frames", "steps": "frames",
                 "channels": "mel bins", "contains": "contain",
                 "expects": "the encoder was built for num_mel_bins={size}"},
}


def check_sequence(x: torch.Tensor, size: int | None, where: str, kind: str = "input", *,
                   allow_empty: bool = False, finite: bool = True) -> None:
    """Check a batch of sequences ``x`` ``(batch, time, size)`` before a layer or an encoder
    runs on it: a floating-point tensor of that shape with at least one step (unless
    ``allow_empty``) and, with ``finite``, no NaN or infinity. ``where`` names the caller in
    the messages; ``kind`` picks their wording (``"input"`` of a layer, ``"features"`` (mel
    bins) of an encoder).
    ``size=None`` takes any number of channels; the feature standardisations
    (:mod:`sparse.features`) use ``allow_empty=True, finite=False`` and check finiteness on the
    valid frames only, since padding may hold anything.

    Raises:
        TypeError: not a tensor, or not floating point.
        ValueError: wrong rank or size, no steps, or NaN / infinite values.
    """
    w = _SEQUENCE_WORDS[kind]
    noun = w["noun"]
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{where}: {noun} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"{where}: {noun} must have shape (batch, {w['time']}, "
                         f"{w['channels']}), got {tuple(x.shape)}")
    if size is not None and x.shape[-1] != size:
        raise ValueError(f"{where}: {noun} {w['has']} {x.shape[-1]} {w['channels']} but "
                         + w["expects"].format(size=size))
    if not allow_empty and x.shape[1] == 0:
        raise ValueError(f"{where}: {noun} {w['has']} no {w['steps']}")
    if not x.is_floating_point():
        raise TypeError(f"{where}: {noun} must be a floating-point tensor, got {x.dtype}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: {noun} {w['contains']} NaN or infinite values")


def _valid_mask(lengths: torch.Tensor | None, batch: int, steps: int, device: torch.device
                ) -> torch.Tensor | None:
    """``(time, batch)`` bool mask of valid steps, after checking ``lengths`` (the rule of
    :mod:`sparse.lengths`); ``None`` when every step is valid."""
    if lengths is None:
        return None
    lengths = check_lengths(lengths, batch, steps, device, minimum=1, what="step")
    return length_mask(lengths, steps, time_major=True)


def _lengths_tensor(lengths, device) -> torch.Tensor | None:
    return None if lengths is None else torch.as_tensor(lengths).to(device=device, dtype=torch.long)


def _per_layer(value, num_layers: int, name: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != num_layers:
            raise ValueError(
                f"{name} has {len(value)} entries but there are {num_layers} layers"
            )
        return list(value)
    return [value] * num_layers


class InferenceCache:
    """Tensors derived from parameters (masked or transposed weights, decay factors), kept
    between calls made without autograd and recomputed as soon as a source tensor changes
    (in place, as an optimiser step or ``load_state_dict`` does, or by replacement, as
    ``.to()`` does): a stream of short chunks then pays for them once, not once a chunk.
    A write through ``param.data`` bypasses the version counter that tells it: change
    parameters in place on the parameter itself (under ``torch.no_grad()``)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple, object]] = {}

    def get(self, name: str, sources, make, *extra):
        key = tuple((t._version, t.data_ptr(), t.dtype, t.device) if t is not None else None
                    for t in sources) + extra
        entry = self._entries.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        value = make()
        self._entries[name] = (key, value)
        return value


# ----------------------------------------------------------------------------- populations


class SpikingNeurons(nn.Module):
    """A population of AdLIF neurons, ``sfa_portion`` of them adaptive, the rest LIF.

    Holds the neuron parameters (``tau_u``, ``tau_w`` in ms, ``a``, ``b``), the adaptation
    mask, and the optional recurrent matrix ``V`` with its mask; runs the time loop on an
    input current ``I``. The defaults are the original SPARSE code's for this class (the
    constructor also takes its keyword names, see docs/original.md).

    Args:
        num_neurons: population size ``N`` (the original's ``input_size``).
        sfa_portion: share of adaptive neurons; exactly ``int(sfa_portion * N)`` at random.
        rnn_portion: share of kept recurrent entries (0: no recurrence).
        lateral: keep the band ``0 < |i - j| <= int(rnn_portion N / 2)`` instead of random.
        normal_init: draw ``tau_u``, ``tau_w``, ``a``, ``b`` from a normal distribution
            centred on each range with a third of its half-width as standard deviation
            (then clipped to the range), instead of uniformly over the range.
        dropout: dropout probability on the input current (training only).
        tau_u_range, tau_w_range: ranges of the time constants in ms (kept in during
            training).
        a_range, b_range: ranges of the adaptation coupling ``a`` and spike-triggered
            adaptation ``b``; ``a`` is also kept below ``(tau_w - tau_u)^2 / (4 tau_u tau_w)``
            (less 1e-5) so the sub-threshold dynamics do not oscillate.
        threshold: firing threshold ``theta``: ``s_t = H(u_t - theta)``; the reset still
            subtracts 1 (the spike), as in the original.
        dt: simulation step in ms.
        surrogate, surrogate_scale: surrogate gradient by name (see :mod:`sparse.surrogate`).
        implementation: ``"auto"`` (default: the compiled loop where the C++ extension is
            available and the tensors are on the CPU, else the torch loop), ``"compiled"``,
            ``"torch"`` or ``"reference"`` (plain autograd oracle); see
            :mod:`sparse.kernels.dispatch`. ``last_implementation`` says which one ran last.
        recurrent_init: initial ``V`` before masking: ``"linear"`` (the original's: that of
            ``torch.nn.Linear``, uniform in +-1/sqrt(N)) or ``"orthogonal"``.
        neuron: all of ``normal_init``, the ranges, ``threshold``, ``surrogate``,
            ``surrogate_scale``, ``implementation`` and ``recurrent_init`` as one
            :class:`~sparse.neuron.NeuronConfig`, instead of those keywords (a keyword set
            to another value than its default and ``neuron``'s is an error).

    Shapes:
        ``forward(current)`` with ``current`` ``(batch, time, N)`` returns spikes of the same
        shape (0/1, zero on padded steps).
    """

    @original_keywords(dict(input_size="num_neurons", use_lateral_rnn="lateral",
                            use_normal_init="normal_init", tauu_lim="tau_u_range",
                            tauw_lim="tau_w_range", a_lim="a_range", b_lim="b_range"))
    def __init__(
        self,
        num_neurons: int,
        sfa_portion: float = 0.5,
        rnn_portion: float = 0.01,
        lateral: bool = True,
        normal_init: bool = False,
        dropout: float = 0.0,
        tau_u_range: Sequence[float] = (3.0, 25.0),
        tau_w_range: Sequence[float] = (30.0, 350.0),
        a_range: Sequence[float] = (-0.5, 5.0),
        b_range: Sequence[float] = (0.0, 2.0),
        threshold: float = 1.0,
        dt: float = 10.0,
        *,
        # (the neuron keywords repeat the other public constructors' on purpose: each keeps
        # the original SPARSE code's arguments, then these, so that every call stays valid;
        # the body makes them one NeuronConfig)
        surrogate: str | Surrogate = "boxcar",
        surrogate_scale: float | None = None,
        implementation: str = "auto",
        recurrent_init: str = "linear",
        neuron: NeuronConfig | None = None,
    ) -> None:
        super().__init__()
        if int(num_neurons) != num_neurons or num_neurons < 1:
            raise ValueError(f"num_neurons must be a positive integer, got {num_neurons}")
        self.num_neurons = n = int(num_neurons)
        self.sfa_portion = check_portion(sfa_portion, "sfa_portion")
        self.rnn_portion = check_portion(rnn_portion, "rnn_portion")
        self.lateral = bool(lateral)
        self.dropout = _check_dropout(dropout, "dropout")
        self.dt = check_positive(dt, "dt")
        neuron = neuron_from_options(locals(), neuron, SpikingNeurons.__init__,
                                     type(self).__name__)
        self.normal_init = neuron.normal_init
        self.threshold = neuron.threshold
        self.tau_u_range, self.tau_w_range = neuron.tau_u_range, neuron.tau_w_range
        self.a_range, self.b_range = neuron.a_range, neuron.b_range
        self.recurrent_init = neuron.recurrent_init
        self.surrogate = neuron.resolved_surrogate()
        self.implementation = neuron.implementation
        self.last_implementation: str | None = None
        self._inference_cache = InferenceCache()

        ranges = (self.tau_u_range, self.tau_w_range, self.a_range, self.b_range)
        self.tau_u, self.tau_w, self.a, self.b = (
            nn.Parameter(_initial_values(n, r, self.normal_init)) for r in ranges
        )
        self.register_buffer("adaptation_mask", adaptation_mask(n, self.sfa_portion))
        if self.rnn_portion > 0:
            mask = recurrent_mask(n, self.rnn_portion, lateral=self.lateral)
            self.register_buffer("recurrent_mask", mask)
            weight = torch.empty(n, n)
            if self.recurrent_init == "orthogonal":
                nn.init.orthogonal_(weight)
            else:  # what torch.nn.Linear.reset_parameters draws: uniform in +-1/sqrt(N)
                nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            self.V = nn.Parameter(weight * mask)
        else:
            self.register_buffer("recurrent_mask", None)
            self.V = None
        self.constrain_()

    @property
    def adaptive(self) -> bool:
        """Whether any neuron adapts (otherwise the adaptation variable is skipped)."""
        return bool(self.adaptation_mask.any())

    def extra_repr(self) -> str:
        return (f"{self.num_neurons}, sfa_portion={self.sfa_portion}, "
                f"rnn_portion={self.rnn_portion}, lateral={self.lateral}, dt={self.dt}, "
                f"threshold={self.threshold}, dropout={self.dropout}, "
                f"surrogate={self.surrogate.name}, implementation={self.implementation}")

    def ranges(self) -> dict[str, tuple[float, float, str]]:
        """Parameter name -> ``(low, high, unit)`` of the ranges :meth:`constrain_` keeps."""
        return {"tau_u": (*self.tau_u_range, " ms"), "tau_w": (*self.tau_w_range, " ms"),
                "a": (*self.a_range, ""), "b": (*self.b_range, "")}

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project the parameters back into their ranges (and masked weights to zero)."""
        _clamp_to_ranges_(self)
        # the original's margin below the bound keeps the two eigenvalues strictly real
        torch.minimum(self.a, a_cap(self.tau_u, self.tau_w) - A_CAP_MARGIN, out=self.a)
        if self.V is not None:
            self.V.mul_(self.recurrent_mask)

    def coefficients(self) -> tuple[torch.Tensor, ...]:
        """Differentiable ``alpha, beta, a, b, V`` as used by the time loop."""
        alpha = torch.exp(-self.dt / self.tau_u)
        beta = torch.exp(-self.dt / self.tau_w)
        mask = self.adaptation_mask.to(self.a.dtype)
        a = self.a * mask
        b = self.b * mask
        recurrent = None if self.V is None else self.V * self.recurrent_mask
        return alpha, beta, a, b, recurrent

    def _loop_coefficients(self) -> tuple[torch.Tensor, ...]:
        """:meth:`coefficients` for the time loop. Without autograd (inference, streaming)
        they are computed once and reused until a parameter changes; ``V`` is then handed
        over as the transpose of a contiguous ``V^T``, the layout the compiled loop reads."""
        if torch.is_grad_enabled():
            return self.coefficients()

        def make() -> tuple[torch.Tensor, ...]:
            alpha, beta, a, b, recurrent = self.coefficients()
            if recurrent is not None:
                recurrent = recurrent.t().contiguous().t()
            return alpha, beta, a, b, recurrent

        sources = (self.tau_u, self.tau_w, self.a, self.b, self.V, self.recurrent_mask,
                   self.adaptation_mask)
        return self._inference_cache.get("coefficients", sources, make, self.dt)

    def initial_state(self, batch: int, *, dtype=None, device=None) -> NeuronState:
        """A zero state for ``batch`` items."""
        return zero_state(batch, self.num_neurons, dtype=dtype or self.tau_u.dtype,
                          device=device or self.tau_u.device)

    def run_time_major(
        self,
        current: torch.Tensor,
        valid: torch.Tensor | None,
        last_step: torch.Tensor,
        state: NeuronState | None,
    ) -> tuple[torch.Tensor, NeuronState]:
        """Time loop on ``current`` ``(time, batch, N)``; returns spikes and final state.

        A threshold ``theta`` other than 1 runs as the unit-threshold loop on shifted
        variables, which every implementation shares: with ``d = theta - 1``,
        ``u' = u - d`` and ``w' = w - a d`` follow the same equations with threshold 1 and the
        input ``I' = I - (1 - alpha)(1 + a) d`` (substitute them into the equations: the
        constant terms cancel exactly). The state goes in and comes out unshifted.
        """
        if self.training and torch.is_grad_enabled():
            self.constrain_()
        if self.training and self.dropout > 0:
            keep = dropout_keep_mask(current.shape, self.dropout, current.device)
            current = current * keep / (1 - self.dropout)
        _, batch, _ = current.shape
        if state is None:
            state = self.initial_state(batch, dtype=current.dtype, device=current.device)
        else:
            state = _check_state(state, batch, self.num_neurons)
        alpha, beta, a, b, recurrent = self._loop_coefficients()
        shift = self.threshold - 1.0
        if shift != 0.0:
            current = current - (1 - alpha) * (1 + a) * shift
            state = NeuronState(state.u - shift, state.w - a * shift, state.s)
        implementation = resolve_implementation(self.implementation, current.device)
        self.last_implementation = implementation
        if implementation == "reference":
            spikes, final = adlif_reference(current, alpha, beta, a, b, recurrent, state,
                                            self.surrogate, valid, last_step)
        else:
            adaptive = self.adaptive
            loop_a, loop_b = (a, b) if adaptive else (a.detach(), b.detach())
            # (without adaptation a and b are structurally zero: no gradient can reach them)
            loop = adlif_compiled if implementation == "compiled" else adlif_fused
            spikes, final = loop(current, alpha, beta, loop_a, loop_b, recurrent, state,
                                 self.surrogate, valid, last_step, adaptive=adaptive)
        if shift != 0.0:
            final = NeuronState(final.u + shift, final.w + a * shift, final.s)
        return spikes, final

    def forward(
        self,
        current: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: NeuronState | None = None,
        return_state: bool = False,
    ):
        """Spikes ``(batch, time, N)`` for an input current ``(batch, time, N)``.

        With ``return_state`` the state after each item's last valid step is returned too,
        ready to be passed as ``state`` for the next chunk of a stream.
        """
        check_sequence(current, self.num_neurons, type(self).__name__)
        batch, steps, _ = current.shape
        valid = _valid_mask(lengths, batch, steps, current.device)
        last = end_step_index(_lengths_tensor(lengths, current.device), steps, batch,
                              current.device)
        spikes, final = self.run_time_major(current.transpose(0, 1), valid, last, state)
        spikes = spikes.transpose(0, 1)
        return (spikes, final) if return_state else spikes


def _check_state(state, batch: int, neurons: int) -> NeuronState:
    if not isinstance(state, (tuple, list)) or len(state) != 3:
        raise TypeError("state must be a NeuronState (u, w, s) of tensors (batch, neurons)")
    state = NeuronState(*state)
    for name, tensor in zip(("u", "w", "s"), state, strict=True):
        if tuple(tensor.shape) != (batch, neurons):
            raise ValueError(
                f"state.{name} must have shape ({batch}, {neurons}), got {tuple(tensor.shape)}"
            )
    return state


# ----------------------------------------------------------------------------- layers


class SpikingFCLayer(nn.Module):
    """Dropout on the input -> Linear over all steps -> Norm -> :class:`SpikingNeurons`.

    The defaults are the original SPARSE code's for this class (the constructor also takes
    its keyword names, see docs/original.md).

    Args:
        input_size, hidden_size: feature counts in and out (``hidden_size`` is the
            original's ``output_size``).
        sfa_portion, rnn_portion, lateral, normal_init, ranges, threshold, dt, surrogate,
            implementation, recurrent_init: see :class:`SpikingNeurons`.
        ff_portion: each entry of ``W`` is kept with this probability (masked ones stay 0).
        bias: whether the linear map has a bias, as in the original. Batch normalisation
            cancels it exactly, so with ``"batchnorm"`` it is left out of the sum and its
            gradient stays ``None`` (the original's gets rounding noise); the running mean is
            kept as if it had been added. ``None``: a bias only without batch normalisation.
        normalization: ``"batchnorm"`` (over the valid (batch, time) rows), ``"layernorm"``
            (over features) or ``"none"``.
        dropout: dropout probability on the layer input.
        batchnorm_momentum: momentum of the running statistics (the original's 0.05).
        neuron: the neuron options as one :class:`~sparse.neuron.NeuronConfig`, instead of
            their keywords (see :class:`SpikingNeurons`).

    Shapes:
        ``forward(x)`` with ``x`` ``(batch, time, input_size)`` returns spikes
        ``(batch, time, hidden_size)``.
    """

    @original_keywords(dict(output_size="hidden_size", use_lateral_rnn="lateral",
                            use_normal_init="normal_init", use_bias="bias",
                            tauu_lim="tau_u_range", tauw_lim="tau_w_range", a_lim="a_range",
                            b_lim="b_range"))
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        sfa_portion: float = 0.5,
        rnn_portion: float = 0.3,
        ff_portion: float = 0.3,
        lateral: bool = False,
        normal_init: bool = True,
        bias: bool | None = True,
        normalization: str = "batchnorm",
        dropout: float = 0.0,
        tau_u_range: Sequence[float] = (3.0, 25.0),
        tau_w_range: Sequence[float] = (30.0, 500.0),
        a_range: Sequence[float] = (0.0, 5.0),
        b_range: Sequence[float] = (0.0, 1.25),
        threshold: float = 1.0,
        dt: float = 1.0,
        *,
        # (the neuron keywords repeat the other public constructors' on purpose: each keeps
        # the original SPARSE code's arguments, then these, so that every call stays valid;
        # the body makes them one NeuronConfig)
        surrogate: str | Surrogate = "boxcar",
        surrogate_scale: float | None = None,
        implementation: str = "auto",
        recurrent_init: str = "linear",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
        neuron: NeuronConfig | None = None,
    ) -> None:
        super().__init__()
        neuron = neuron_from_options(locals(), neuron, SpikingFCLayer.__init__,
                                     type(self).__name__)
        if int(input_size) != input_size or input_size < 1:
            raise ValueError(f"input_size must be a positive integer, got {input_size}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        self.input_size = int(input_size)
        self.hidden_size = check_count(hidden_size, "hidden_size")
        self.dropout = _check_dropout(dropout, "dropout")
        self.ff_portion = check_portion(ff_portion, "ff_portion")
        self.normalization = normalization
        self._inference_cache = InferenceCache()
        self.neurons = SpikingNeurons(hidden_size, sfa_portion=sfa_portion,
                                      rnn_portion=rnn_portion, lateral=lateral, dt=dt,
                                      neuron=neuron)
        if bias is None:
            bias = normalization != "batchnorm"
        self.linear = nn.Linear(self.input_size, self.hidden_size, bias=bool(bias))
        self.register_buffer("feedforward_mask",
                             feedforward_mask(self.hidden_size, self.input_size, self.ff_portion))
        with torch.no_grad():
            self.linear.weight.mul_(self.feedforward_mask)
        self.norm = _make_norm(normalization, self.hidden_size, batchnorm_momentum)

    @property
    def implementation(self) -> str:
        return self.neurons.implementation

    def complete_former_state(self, state_dict: dict[str, torch.Tensor], prefix: str) -> None:
        """Add to ``state_dict`` (in place) what a state saved by this library's former
        version lacks: without bias before batch normalisation (its former default), the
        layer loads a zero bias, which leaves its outputs unchanged."""
        key = prefix + "linear.bias"
        if (self.linear.bias is not None and isinstance(self.norm, nn.BatchNorm1d)
                and key not in state_dict and prefix + "linear.weight" in state_dict):
            state_dict[key] = torch.zeros_like(self.linear.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self.complete_former_state(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project parameters into their ranges and masked weights back to zero."""
        self.linear.weight.mul_(self.feedforward_mask)
        self.neurons.constrain_()

    def _masked_weight(self) -> torch.Tensor:
        """``W`` with the feed-forward mask applied; without autograd it is computed once and
        reused until it changes, held as the transpose of a contiguous ``W^T`` (the layout
        the compiled loop's spike products read)."""
        if torch.is_grad_enabled():
            return self.linear.weight * self.feedforward_mask

        def make() -> torch.Tensor:
            return (self.linear.weight * self.feedforward_mask).t().contiguous().t()

        return self._inference_cache.get("weight", (self.linear.weight, self.feedforward_mask),
                                         make)

    def run_time_major(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None,
        last_step: torch.Tensor,
        state: NeuronState | None,
    ) -> tuple[torch.Tensor, NeuronState]:
        """The layer on ``x`` ``(time, batch, input_size)``; spikes ``(time, batch, hidden)``."""
        weight = self._masked_weight()
        bias = self.linear.bias
        folded = None
        if bias is not None and isinstance(self.norm, nn.BatchNorm1d):
            # batch normalisation subtracts a constant bias again, exactly: it is left out of
            # the sum (no gradient but an exact zero, no rounding) and folded into the
            # running mean, which is kept as if it had been added (see _norm_spec)
            folded, bias = bias.detach(), None
        norm = _norm_spec(self.norm, self.training, folded)
        keep = None
        scale = 1.0
        if self.training and self.dropout > 0:
            keep = dropout_keep_mask(x.shape, self.dropout, x.device)
            scale = 1.0 / (1.0 - self.dropout)
        implementation = resolve_implementation(self.implementation, x.device)
        # a sparse spike train is multiplied from the indices of its active spikes
        sparse = implementation == "compiled" and sparse_spike_train(x)
        binary = sparse or (implementation != "reference" and x.requires_grad and is_binary(x))
        if implementation == "reference" or not torch.is_grad_enabled():
            if sparse:
                active = surviving_spikes(x.to(torch.bool), keep)
                current = normalize(spike_affine(active, scale, weight, bias), norm, valid,
                                    update_running=True)
            else:
                dropped = x if keep is None else x * keep * scale
                current = project(dropped, weight, bias, norm, valid, update_running=True)
        else:
            # spikes from an upstream layer are saved as bool; an external input is held by
            # its owner anyway, so a reference costs nothing
            compact = x.requires_grad and binary
            current = CompactProjection.apply(x, keep, scale, compact, norm, valid, weight,
                                              bias, norm.weight, norm.bias, sparse)
        if folded is not None and norm.training and norm.running_mean is not None:
            with torch.no_grad():  # the running mean of (W x + bias), as the original keeps it
                norm.running_mean.add_(folded, alpha=norm.momentum)
        return self.neurons.run_time_major(current, valid, last_step, state)

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: NeuronState | None = None,
        return_state: bool = False,
    ):
        """Spikes ``(batch, time, hidden_size)``; see :meth:`SpikingNeurons.forward`."""
        check_sequence(x, self.input_size, type(self).__name__)
        batch, steps, _ = x.shape
        valid = _valid_mask(lengths, batch, steps, x.device)
        last = end_step_index(_lengths_tensor(lengths, x.device), steps, batch, x.device)
        spikes, final = self.run_time_major(x.transpose(0, 1), valid, last, state)
        spikes = spikes.transpose(0, 1)
        return (spikes, final) if return_state else spikes


class MultilayeredSpiking(nn.Module):
    """A stack of :class:`SpikingFCLayer` with per-layer portions (the original SPARSE code's
    class, with its defaults and, besides this library's, its keyword names: see
    docs/original.md).

    Args:
        input_size: input features.
        layer_sizes: neurons per layer.
        sfa_portions, rnn_portions, ff_portions: one share per layer (a single number is
            used for every layer). The defaults are the original's, one value for each of its
            two default layers.
        lateral: lateral recurrent mode, for all layers or one flag per layer.
        dropout: dropout probability on each layer's input.
        normal_init, bias, normalization, ranges, threshold, batchnorm_momentum,
            recurrent_init: see :class:`SpikingFCLayer` and :class:`SpikingNeurons`.
        dt: step in ms.
        return_all_spikes: also return the spike trains of every layer.
        surrogate, surrogate_scale, implementation: see :class:`SpikingNeurons`.
        neuron: the neuron options as one :class:`~sparse.neuron.NeuronConfig`, instead of
            their keywords (see :class:`SpikingNeurons`); every layer gets the same.

    Shapes:
        ``forward(x)`` with ``x`` ``(batch, time, input_size)`` returns the last layer's
        spikes ``(batch, time, layer_sizes[-1])``; with ``return_all_spikes`` a tuple
        ``(output, [spikes of each layer])``; with ``return_state`` the list of per-layer
        final states is appended to the returned tuple.
    """

    @original_keywords(dict(use_lateral_rnn="lateral", use_normal_init="normal_init",
                            use_bias="bias", tauu_lim="tau_u_range", tauw_lim="tau_w_range",
                            a_lim="a_range", b_lim="b_range"))
    def __init__(
        self,
        input_size: int,
        layer_sizes: Sequence[int] = (144, 144),
        sfa_portions: Sequence[float] | float = _ORIGINAL_PORTIONS["sfa_portions"],
        rnn_portions: Sequence[float] | float = _ORIGINAL_PORTIONS["rnn_portions"],
        ff_portions: Sequence[float] | float = _ORIGINAL_PORTIONS["ff_portions"],
        lateral: Sequence[bool] | bool = False,
        dropout: float = 0.0,
        normal_init: bool = True,
        bias: bool | None = True,
        normalization: str = "batchnorm",
        tau_u_range: Sequence[float] = (3.0, 25.0),
        tau_w_range: Sequence[float] = (30.0, 500.0),
        a_range: Sequence[float] = (0.0, 5.0),
        b_range: Sequence[float] = (0.0, 1.25),
        threshold: float = 1.0,
        dt: float = 1.0,
        return_all_spikes: bool = False,
        *,
        # (the neuron keywords repeat the other public constructors' on purpose: each keeps
        # the original SPARSE code's arguments, then these, so that every call stays valid;
        # the body makes them one NeuronConfig)
        surrogate: str | Surrogate = "boxcar",
        surrogate_scale: float | None = None,
        implementation: str = "auto",
        recurrent_init: str = "linear",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
        neuron: NeuronConfig | None = None,
    ) -> None:
        super().__init__()
        neuron = neuron_from_options(locals(), neuron, MultilayeredSpiking.__init__,
                                     type(self).__name__)
        if isinstance(layer_sizes, int) or len(layer_sizes) == 0:
            raise ValueError(f"layer_sizes must be a non-empty list of sizes, got {layer_sizes!r}")
        num_layers = len(layer_sizes)
        portions = dict(sfa_portions=sfa_portions, rnn_portions=rnn_portions,
                        ff_portions=ff_portions)
        for name, value in portions.items():
            if value is _ORIGINAL_PORTIONS[name] and num_layers != len(value):
                raise ValueError(
                    f"{name} was not given, and its default {list(value)} (the original "
                    f"SPARSE code's) has one value for each of 2 layers, but layer_sizes "
                    f"lists {num_layers}; give {name} one value per layer or one value for all"
                )
        sfa, rnn, ff = (_per_layer(v, num_layers, k) for k, v in portions.items())
        lat = _per_layer(lateral, num_layers, "lateral")
        self.input_size = int(input_size)
        self.layer_sizes = [check_count(n, f"layer_sizes[{i}]") for i, n in enumerate(layer_sizes)]
        self.return_all_spikes = return_all_spikes
        layers = []
        fan_in = self.input_size
        for i, size in enumerate(self.layer_sizes):
            layers.append(SpikingFCLayer(
                fan_in, size, sfa_portion=sfa[i], rnn_portion=rnn[i], ff_portion=ff[i],
                lateral=lat[i], bias=bias, normalization=normalization, dropout=dropout, dt=dt,
                batchnorm_momentum=batchnorm_momentum, neuron=neuron,
            ))
            fan_in = size
        self.layers = nn.ModuleList(layers)

    @property
    def output_size(self) -> int:
        """Neurons of the last layer (as the original's attribute)."""
        return self.layer_sizes[-1]

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes)

    @torch.no_grad()
    def constrain_(self) -> None:
        for layer in self.layers:
            layer.constrain_()

    def initial_state(self, batch: int, *, dtype=None, device=None) -> list[NeuronState]:
        return [layer.neurons.initial_state(batch, dtype=dtype, device=device)
                for layer in self.layers]

    def run_time_major(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None,
        last_step: torch.Tensor,
        state: Sequence[NeuronState] | None,
    ) -> tuple[list[torch.Tensor], list[NeuronState]]:
        """All layers on ``x`` ``(time, batch, input_size)``; spikes of every layer."""
        if state is not None and len(state) != len(self.layers):
            raise ValueError(
                f"state has {len(state)} entries but the network has {len(self.layers)} layers"
            )
        all_spikes, finals = [], []
        for i, layer in enumerate(self.layers):
            x, final = layer.run_time_major(x, valid, last_step,
                                            None if state is None else state[i])
            all_spikes.append(x)
            finals.append(final)
        return all_spikes, finals

    def forward(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor | None = None,
        state: Sequence[NeuronState] | None = None,
        return_state: bool = False,
        return_all_spikes: bool | None = None,
    ):
        check_sequence(x, self.input_size, type(self).__name__)
        batch, steps, _ = x.shape
        valid = _valid_mask(lengths, batch, steps, x.device)
        last = end_step_index(_lengths_tensor(lengths, x.device), steps, batch, x.device)
        all_spikes, finals = self.run_time_major(x.transpose(0, 1), valid, last, state)
        all_spikes = [s.transpose(0, 1) for s in all_spikes]
        want_all = self.return_all_spikes if return_all_spikes is None else return_all_spikes
        out: list = [all_spikes[-1]]
        if want_all:
            out.append(all_spikes)
        if return_state:
            out.append(finals)
        return out[0] if len(out) == 1 else tuple(out)


# ----------------------------------------------------------------------------- readout


class ReadoutLayer(nn.Module):
    """Non-spiking leaky integrators whose softmax is summed over time (KWS readout).

    ``u_t = alpha u_{t-1} + (1 - alpha) Norm(W x_t)``, output ``sum_t softmax(u_t)`` over the
    output units (padded steps excluded), ``alpha = exp(-dt / tau_u)`` with trainable
    ``tau_u`` in ms. Every implementation but ``"reference"`` runs the linear recurrence as
    blocks of matrix products (:func:`~sparse.kernels.readout.leaky_integrate_blocked`),
    ``"reference"`` step by step.

    Args:
        input_size, output_size: features in, output units (``output_size`` is the
            original's ``hidden_size``).
        dropout: dropout probability on the input (training only).
        normalization: ``"batchnorm"``, ``"layernorm"`` or ``"none"``.
        bias: whether the linear map has a bias.
        dt: step in ms.
        tau_steps: range of ``tau_u`` in steps, ``(low, high)``; the range in ms is
            ``dt * tau_steps``, so the per-step decay spans ``exp(-1/low)..exp(-1/high)``
            whatever the step. Default (when ``tau_u_range`` is not given either): the
            original's ``(5, 25)``, a decay in ``[e^(-1/5), e^(-1/25)]`` = 0.82..0.96.
        tau_u_range: the range of ``tau_u`` in ms instead (not together with ``tau_steps``).
        implementation: see :class:`SpikingNeurons`.
        batchnorm_momentum: momentum of the running statistics (the original's 0.05).

    ``tau_u`` starts with its decay uniform over the range's decays (as the original's).

    Shapes:
        ``x`` ``(batch, time, input_size)`` -> ``(batch, output_size)``.
    """

    @original_keywords(dict(hidden_size="output_size", use_bias="bias"))
    def __init__(
        self,
        input_size: int,
        output_size: int,
        dropout: float = 0.0,
        normalization: str = "batchnorm",
        bias: bool = True,
        *,
        dt: float = 1.0,
        tau_steps: Sequence[float] | None = None,
        tau_u_range: Sequence[float] | None = None,
        implementation: str = "auto",
        batchnorm_momentum: float = BATCHNORM_MOMENTUM,
    ) -> None:
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        self.input_size = int(input_size)
        self.output_size = int(output_size)
        self.dt = check_positive(dt, "dt")
        self.dropout = _check_dropout(dropout, "dropout")
        if tau_steps is not None and tau_u_range is not None:
            raise ValueError("give the readout's time constants either as tau_steps (in steps) "
                             "or as tau_u_range (in ms), not both")
        if tau_u_range is None:
            steps = check_range(READOUT_TAU_STEPS if tau_steps is None else tau_steps,
                                 "tau_steps", lower_bound=0.0)
            tau_u_range = (steps[0] * self.dt, steps[1] * self.dt)
        self.tau_u_range = check_range(tau_u_range, "tau_u_range", lower_bound=0.0)
        self.implementation = check_implementation(implementation)
        self.linear = nn.Linear(self.input_size, self.output_size, bias=bool(bias))
        low, high = (math.exp(-self.dt / tau) for tau in self.tau_u_range)
        decay = torch.empty(self.output_size, dtype=torch.float64).uniform_(low, high)
        self.tau_u = nn.Parameter((-self.dt / decay.log()).to(torch.get_default_dtype()))
        self.norm = _make_norm(normalization, self.output_size, batchnorm_momentum)
        self.constrain_()

    @property
    def tau_steps(self) -> tuple[float, float]:
        """The range of ``tau_u`` in steps."""
        return (self.tau_u_range[0] / self.dt, self.tau_u_range[1] / self.dt)

    def extra_repr(self) -> str:
        low, high = self.tau_steps
        return (f"{self.input_size}, {self.output_size}, dropout={self.dropout}, dt={self.dt}, "
                f"tau_steps=({low:g}, {high:g})")

    def ranges(self) -> dict[str, tuple[float, float, str]]:
        """Parameter name -> ``(low, high, unit)`` of the ranges :meth:`constrain_` keeps."""
        return {"tau_u": (*self.tau_u_range, " ms")}

    @torch.no_grad()
    def constrain_(self) -> None:
        _clamp_to_ranges_(self)

    def initial_state(self, batch: int, *, dtype=None, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.output_size, dtype=dtype or self.tau_u.dtype,
                           device=device or self.tau_u.device)

    def run_time_major(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None,
        state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``(time, batch, in)`` -> (summed softmax ``(batch, out)``, final ``u``)."""
        if self.training and torch.is_grad_enabled():
            self.constrain_()
        if self.training and self.dropout > 0:
            x = x * dropout_keep_mask(x.shape, self.dropout, x.device) / (1 - self.dropout)
        norm = _norm_spec(self.norm, self.training)
        current = project(x, self.linear.weight, self.linear.bias, norm, valid,
                          update_running=True)
        alpha = torch.exp(-self.dt / self.tau_u)
        drive = (1 - alpha) * current
        u0 = self.initial_state(x.shape[1], dtype=x.dtype, device=x.device) if state is None \
            else state
        integrate = (leaky_integrate_reference if self.implementation == "reference"
                     else leaky_integrate_blocked)
        u_all, final = integrate(drive, alpha, valid, u0)
        probs = torch.softmax(u_all, dim=-1)
        if valid is not None:
            probs = probs * valid.unsqueeze(-1).to(probs.dtype)
        return probs.sum(0), final

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                state: torch.Tensor | None = None, return_state: bool = False):
        check_sequence(x, self.input_size, type(self).__name__)
        batch, steps, _ = x.shape
        valid = _valid_mask(lengths, batch, steps, x.device)
        out, final = self.run_time_major(x.transpose(0, 1), valid, state)
        return (out, final) if return_state else out


# ----------------------------------------------------------------------------- helpers


def set_implementation(module: nn.Module, implementation: str) -> nn.Module:
    """Switch every spiking population and readout in ``module`` to ``"auto"``,
    ``"compiled"``, ``"torch"`` or ``"reference"`` (the plain-autograd, step-by-step oracle);
    see :mod:`sparse.kernels.dispatch`."""
    implementation = check_implementation(implementation)
    for sub in module.modules():
        if isinstance(sub, (SpikingNeurons, ReadoutLayer)):
            sub.implementation = implementation
    return module


@torch.no_grad()
def constrain_parameters(module: nn.Module) -> None:
    """Project every constrained parameter of ``module`` back into its range."""
    for sub in module.modules():
        if isinstance(sub, (SpikingNeurons, SpikingFCLayer, ReadoutLayer)):
            sub.constrain_()


def attach_constraints(optimizer: torch.optim.Optimizer, module: nn.Module):
    """Re-project ``module``'s parameters after every ``optimizer.step()``.

    Returns the hook handle (``handle.remove()`` detaches it).
    """
    return optimizer.register_step_post_hook(lambda *_: constrain_parameters(module))
