"""The options every spiking population of a network shares, as one value: :class:`NeuronConfig`.

The encoders and :class:`~sparse.snn.MultilayeredSpiking` take these options as separate
keywords (the original SPARSE code's constructors do), build one :class:`NeuronConfig` from
them and hand it down to each layer and population (``neuron=``), so that the options are
checked once, in one place, and every population of a network gets the same ones. The layers
and populations also accept ``neuron=`` from a caller, instead of the separate keywords. The
project's own :class:`~sparse.encoder_spikes.SpikeEncoder` (the original SPARSE code has no
such class) takes ``neuron=`` only; its former separate keywords still work for one release
(:func:`neuron_from_keywords`).

What a population does *not* share stays its own argument: its size, its shares of adaptive
neurons and recurrent connections, its lateral mode (the nerve and each cortex layer have
their own), its dropout and the step ``dt``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .kernels.dispatch import check_implementation
from .surrogate import Surrogate, get_surrogate

__all__ = ["DEFAULT_NEURON", "NEURON_OPTIONS", "RECURRENT_INITS", "NeuronConfig",
           "neuron_from_keywords", "neuron_from_options"]

RECURRENT_INITS = ("linear", "orthogonal")


def check_range(value: Sequence[float], name: str, lower_bound: float | None = None
                ) -> tuple[float, float]:
    """``value`` as a pair of finite floats ``(low, high)`` with ``low <= high`` (and
    ``low > lower_bound`` when given); a ``ValueError`` naming ``name`` otherwise."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"{name} must satisfy low <= high with finite values, got {value!r}")
    if lower_bound is not None and low <= lower_bound:
        raise ValueError(f"{name} must be above {lower_bound}, got {value!r}")
    return low, high


def check_positive(value: float, name: str) -> float:
    """``value`` as a positive finite float; a ``ValueError`` naming ``name`` otherwise."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value}")
    return value


@dataclass(frozen=True)
class NeuronConfig:
    """The neuron options shared by the populations of a network (checked on construction).

    The defaults are those of :class:`~sparse.snn.SpikingNeurons` and of the encoders (the
    original SPARSE code's); :class:`~sparse.snn.SpikingFCLayer` and
    :class:`~sparse.snn.MultilayeredSpiking` have other defaults for the ranges and the
    initialisation (the original's for those classes), which their keywords keep.

    Attributes:
        tau_u_range: range ``(low, high)`` of the membrane time constants ``tau_u``, in ms
            (``low > 0``); the parameters are drawn in it and kept in it during training.
        tau_w_range: range of the adaptation time constants ``tau_w``, in ms (``low > 0``).
        a_range: range of the sub-threshold adaptation coupling ``a`` (dimensionless; ``a``
            is also kept below its no-oscillation bound).
        b_range: range of the spike-triggered adaptation ``b`` (in units of the threshold).
        normal_init: draw ``tau_u``, ``tau_w``, ``a``, ``b`` from a normal distribution
            centred on each range (a third of its half-width as standard deviation, clipped
            to the range) instead of uniformly over the range.
        threshold: firing threshold ``theta`` (positive; the reset subtracts 1).
        surrogate: surrogate spike derivative, by name (see :mod:`sparse.surrogate`) or as a
            :class:`~sparse.surrogate.Surrogate`.
        surrogate_scale: its width parameter (positive); ``None``: the surrogate's default.
        implementation: time loop, ``"auto"``, ``"compiled"``, ``"torch"`` or
            ``"reference"`` (see :mod:`sparse.kernels.dispatch`).
        recurrent_init: initial recurrent weights before masking, ``"linear"`` (as
            ``torch.nn.Linear``, the original's) or ``"orthogonal"``.

    Ranges given as lists are stored as tuples of floats, so two configs with the same
    values compare equal.
    """

    tau_u_range: tuple[float, float] = (3.0, 25.0)
    tau_w_range: tuple[float, float] = (30.0, 350.0)
    a_range: tuple[float, float] = (-0.5, 5.0)
    b_range: tuple[float, float] = (0.0, 2.0)
    normal_init: bool = False
    threshold: float = 1.0
    surrogate: str | Surrogate = "boxcar"
    surrogate_scale: float | None = None
    implementation: str = "auto"
    recurrent_init: str = "linear"

    def __post_init__(self) -> None:
        checked = dict(
            tau_u_range=check_range(self.tau_u_range, "tau_u_range", lower_bound=0.0),
            tau_w_range=check_range(self.tau_w_range, "tau_w_range", lower_bound=0.0),
            a_range=check_range(self.a_range, "a_range"),
            b_range=check_range(self.b_range, "b_range"),
            normal_init=bool(self.normal_init),
            threshold=check_positive(self.threshold, "threshold"),
            surrogate_scale=(None if self.surrogate_scale is None
                             else check_positive(self.surrogate_scale, "surrogate_scale")),
            implementation=check_implementation(self.implementation),
        )
        get_surrogate(self.surrogate, checked["surrogate_scale"])  # an unknown name raises
        if self.recurrent_init not in RECURRENT_INITS:
            raise ValueError(
                f"recurrent_init must be one of {RECURRENT_INITS}, got {self.recurrent_init!r}"
            )
        for name, value in checked.items():  # frozen: the checked values replace the given
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> NeuronConfig:
        """The config of the options named in ``options`` (a constructor's ``locals()``),
        which must hold every field."""
        return cls(**{f.name: options[f.name] for f in dataclasses.fields(cls)})

    def resolved_surrogate(self) -> Surrogate:
        """The surrogate with its scale, as the time loop uses it."""
        return get_surrogate(self.surrogate, self.surrogate_scale)


#: The defaults (the encoders' and :class:`~sparse.snn.SpikingNeurons`'), as one value.
DEFAULT_NEURON = NeuronConfig()

#: The keyword names of :class:`NeuronConfig`'s options (the same in every constructor).
NEURON_OPTIONS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(NeuronConfig))


def _defaults(init: Callable) -> dict[str, Any]:
    """The defaults of ``init``'s neuron options (through a keyword-renaming decorator)."""
    params = inspect.signature(init).parameters
    return {name: params[name].default for name in NEURON_OPTIONS}


def neuron_from_options(options: Mapping[str, Any], neuron: NeuronConfig | None,
                        init: Callable, where: str) -> NeuronConfig:
    """The :class:`NeuronConfig` of a constructor that takes the options as keywords and
    ``neuron=`` as an alternative.

    Args:
        options: the constructor's arguments (its ``locals()``); the entries named in
            :data:`NEURON_OPTIONS` are read.
        neuron: the ``neuron=`` argument, or ``None``.
        init: the constructor, whose defaults tell which options were set.
        where: the class name, for the message.

    Without ``neuron`` the options make the config. With it, ``neuron`` holds; an option
    that differs both from its default and from ``neuron``'s value is a ``ValueError``
    (it was set explicitly, and conflicts). An option left at its default cannot be told
    from one set to the default, so it never conflicts.
    """
    explicit = NeuronConfig.from_options(options)
    if neuron is None:
        return explicit
    if not isinstance(neuron, NeuronConfig):
        raise TypeError(f"{where}: neuron must be a NeuronConfig, got {type(neuron).__name__}")
    default = NeuronConfig.from_options(_defaults(init))
    clashes = [name for name in NEURON_OPTIONS
               if getattr(explicit, name) != getattr(default, name)
               and getattr(explicit, name) != getattr(neuron, name)]
    if clashes:
        shown = ", ".join(f"{n}={getattr(explicit, n)!r} (neuron has {getattr(neuron, n)!r})"
                          for n in clashes)
        raise ValueError(
            f"{where}: got neuron= and, differently, {shown}; give these options either in "
            f"neuron= or as keywords, not both"
        )
    return neuron


def neuron_from_keywords(neuron: NeuronConfig | None, keywords: Mapping[str, Any],
                         where: str, *, stacklevel: int = 3) -> NeuronConfig:
    """The :class:`NeuronConfig` of a constructor that takes ``neuron=`` and, for one release,
    the options one by one as deprecated keywords (``keywords``: its ``**`` arguments).

    Each given keyword replaces the field of ``neuron`` (of the defaults without it), with a
    ``FutureWarning`` naming ``neuron=NeuronConfig(...)``; ``stacklevel`` (as
    ``warnings.warn``'s) points it at the user's call.

    Raises:
        TypeError: a keyword is no option of :class:`NeuronConfig` (the message names the
            accepted ones), or ``neuron`` is not a :class:`NeuronConfig`.
        ValueError: ``neuron`` is given together with keywords that differ from it.
    """
    unknown = [name for name in keywords if name not in NEURON_OPTIONS]
    if unknown:
        raise TypeError(
            f"{where}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"the neuron options it still accepts one by one are {', '.join(NEURON_OPTIONS)}")
    if neuron is not None and not isinstance(neuron, NeuronConfig):
        raise TypeError(f"{where}: neuron must be a NeuronConfig, got {type(neuron).__name__}")
    if not keywords:
        return DEFAULT_NEURON if neuron is None else neuron
    shown = ", ".join(f"{name}=..." for name in keywords)
    # FutureWarning, not DeprecationWarning: a script's author sees it by default
    warnings.warn(f"{where}: the neuron keywords ({', '.join(keywords)}) are deprecated and "
                  f"will be removed in the next release; pass neuron=NeuronConfig({shown})",
                  FutureWarning, stacklevel=stacklevel)
    config = dataclasses.replace(DEFAULT_NEURON if neuron is None else neuron, **keywords)
    if neuron is not None and config != neuron:
        raise ValueError(f"{where}: got neuron= and, differently, {', '.join(keywords)}; give "
                         "the neuron options in neuron= only")
    return config
