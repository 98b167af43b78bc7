"""The spiking core of a model as plain arrays: what an exchange format can hold exactly.

A task model is feature standardisation -> convolutional front end (causal Conv2d, LayerNorm,
LeakyReLU) -> auditory-nerve LIF population -> cortex (spiking layers) -> the KWS readout or
the ASR pooling and MLP head. Its *spiking core* runs from the nerve's input current to the
last population (KWS: to the readout's membrane potential) and is a chain of

* :class:`Projection` - ``I_t = W x_t + b``: a layer's masked linear map, with batch
  normalisation (running statistics, as in eval mode) folded in;
* :class:`LIFPopulation` - ``u_t = alpha (u_{t-1} - s_{t-1}) + I_t + V s_{t-1}``,
  ``s_t = H(u_t - 1)`` with ``alpha = exp(-dt / tau_u)`` and the optional recurrent ``V``;
* :class:`LeakyReadout` - ``v_t = alpha v_{t-1} + (1 - alpha) I_t``, non-spiking.

:func:`spiking_core` collects it (eval-mode behaviour: no dropout) and refuses, with one
:class:`ExportError` naming every offending population or layer, what has no exact form:
adaptive (AdLIF) neurons, layer normalisation, and batch normalisation without running
statistics. What stays outside the core (front end, pooling, head, softmax) is listed in
:attr:`SpikingCore.outside`. Arrays are numpy: weights in the model's dtype, decay factors in
float64 (they are exactly the float32/float64 values the layers compute).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from ..snn import MultilayeredSpiking, ReadoutLayer, SpikingFCLayer, SpikingNeurons

__all__ = ["ExportError", "LIFPopulation", "LeakyReadout", "Projection", "SpikingCore",
           "spiking_core"]


class ExportError(ValueError):
    """The model (or part of it) has no exact form in the export format; the message names
    each population or layer and says why."""


@dataclass(frozen=True)
class Projection:
    """``I_t = weight x_t + bias`` feeding population ``name``.

    ``weight`` ``(out, in)`` (feed-forward mask applied), ``bias`` ``(out,)`` or None;
    ``folded`` says what was folded in (``"batchnorm"``) or is None.
    """

    name: str
    weight: np.ndarray
    bias: np.ndarray | None
    folded: str | None = None


@dataclass(frozen=True)
class LIFPopulation:
    """LIF neurons with threshold 1 and reset by subtraction; ``alpha`` ``(N,)`` float64 is
    ``exp(-dt / tau_u)`` as the layer computes it, ``recurrent`` the masked ``V`` ``(N, N)``
    (``V s`` = ``s @ V.T``) or None. ``module`` is the population's path in the model."""

    name: str
    alpha: np.ndarray
    recurrent: np.ndarray | None
    module: str = ""

    @property
    def size(self) -> int:
        return int(self.alpha.shape[0])


@dataclass(frozen=True)
class LeakyReadout:
    """The KWS readout's leaky integrators: ``v_t = alpha v_{t-1} + (1 - alpha) I_t``."""

    name: str
    alpha: np.ndarray
    module: str = ""

    @property
    def size(self) -> int:
        return int(self.alpha.shape[0])


Stage = Projection | LIFPopulation | LeakyReadout


@dataclass(frozen=True)
class SpikingCore:
    """The chain of stages from the core's input to its output.

    Attributes:
        dt_ms: the step of every population, in ms.
        input_size: values per step entering the first stage.
        input: what those values are, in words.
        stages: projections and populations in order (a projection always feeds the
            population that follows it).
        outside: parts of the model that stay outside the core, each with why.
    """

    dt_ms: float
    input_size: int
    input: str
    stages: tuple[Stage, ...]
    outside: tuple[str, ...] = ()

    @property
    def output_size(self) -> int:
        return self.stages[-1].size  # type: ignore[union-attr]

    def describe(self) -> list[str]:
        """One line per population (size, kind, recurrence, its input map)."""
        lines = []
        pending: Projection | None = None
        for stage in self.stages:
            if isinstance(stage, Projection):
                pending = stage
                continue
            kind = "LIF" if isinstance(stage, LIFPopulation) else "LI (leaky readout)"
            parts = [f"{stage.size} {kind}"]
            if isinstance(stage, LIFPopulation) and stage.recurrent is not None:
                kept = int(np.count_nonzero(stage.recurrent))
                parts.append(f"recurrent ({kept} of {stage.size * stage.size} weights)")
            if pending is not None:
                out, fan_in = pending.weight.shape
                text = f"input {'affine' if pending.bias is not None else 'linear'} map " \
                       f"{fan_in} -> {out}"
                if pending.folded:
                    text += " (batch normalisation folded in)"
                parts.append(text)
            lines.append(f"{stage.name}: {', '.join(parts)}")
            pending = None
        return lines


# ----------------------------------------------------------------------------- collection


_ADAPTIVE_WHY = (
    "NIR has no adaptive neuron, and written as two coupled leaky integrators the membrane u "
    "and the adaptation w would form a loop in which w_t takes u_t of the same step while "
    "u_t takes w_(t-1): NIR leaves the order inside a step to each simulator, so no reader "
    "could be relied on to reproduce the spikes. A model whose cortex has no adaptive "
    "neurons (model.cortex_sfa_portions set to 0) exports"
)
_LAYERNORM_WHY = (
    "layer normalisation divides each step's currents by their own mean and spread, which no "
    "NIR node expresses (batch normalisation with running statistics is an affine map and is "
    "folded into the weights; layer normalisation is not); train with model.normalization: "
    "batchnorm or none for an exportable model"
)
_BATCHSTATS_WHY = (
    "batch normalisation without running statistics normalises with the statistics of "
    "whatever batch it sees, so it is no fixed map of one input"
)


class _Problems:
    """Refusals collected over the whole model, reported together."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.reasons: list[str] = []

    def add(self, item: str, reason: str) -> None:
        self.items.append(item)
        if reason not in self.reasons:
            self.reasons.append(reason)

    def raise_if_any(self, what: str) -> None:
        if self.items:
            raise ExportError(
                f"{what} cannot be exported exactly: {'; '.join(self.items)}. "
                f"{'. '.join(r[0].upper() + r[1:] for r in self.reasons)}."
            )


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


@torch.no_grad()
def _population(name: str, neurons: SpikingNeurons, path: str, problems: _Problems
                ) -> LIFPopulation:
    adaptive = int(neurons.adaptation_mask.sum())
    if adaptive:
        problems.add(f"population '{name}' ({path}) has {adaptive} adaptive (AdLIF) neurons "
                     f"of {neurons.num_neurons}", _ADAPTIVE_WHY)
    alpha = neurons.coefficients()[0]  # exp(-dt / tau_u), exactly as the time loop gets it
    recurrent = None
    if neurons.V is not None:
        recurrent = _array(neurons.V * neurons.recurrent_mask)
    return LIFPopulation(name, _array(alpha).astype(np.float64), recurrent, path)


@torch.no_grad()
def _projection(name: str, linear: nn.Linear, mask: torch.Tensor | None, norm: nn.Module | None,
                path: str, problems: _Problems) -> Projection:
    """``Norm(W x + b)`` as ``W' x + b'``; batch normalisation folds in exactly:
    ``g = gamma / sqrt(running_var + eps)``, ``W' = g W``, ``b' = g (b - running_mean) + beta``
    (computed in float64, written in the weights' dtype)."""
    dtype = linear.weight.dtype
    weight = linear.weight if mask is None else linear.weight * mask
    bias = linear.bias
    if norm is None:
        return Projection(name, _array(weight), None if bias is None else _array(bias))
    if isinstance(norm, nn.LayerNorm):
        problems.add(f"the input current of '{name}' ({path}.norm) is layer-normalised",
                     _LAYERNORM_WHY)
        return Projection(name, _array(weight), None if bias is None else _array(bias))
    if not isinstance(norm, nn.BatchNorm1d) or norm.running_mean is None:
        problems.add(f"the batch normalisation of '{name}' ({path}.norm) keeps no running "
                     "statistics", _BATCHSTATS_WHY)
        return Projection(name, _array(weight), None if bias is None else _array(bias))
    w = weight.to(torch.float64)
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.double()
    gain = torch.rsqrt(norm.running_var.double() + norm.eps)
    shift = torch.zeros_like(gain)
    if norm.weight is not None:
        gain = gain * norm.weight.double()
        shift = norm.bias.double()
    folded_w = gain[:, None] * w
    folded_b = gain * (b - norm.running_mean.double()) + shift
    return Projection(name, _array(folded_w.to(dtype)), _array(folded_b.to(dtype)), "batchnorm")


def _layer_stages(name: str, layer: SpikingFCLayer, path: str, problems: _Problems
                  ) -> list[Stage]:
    projection = _projection(name, layer.linear, layer.feedforward_mask, layer.norm, path,
                             problems)
    return [projection, _population(name, layer.neurons, f"{path}.neurons", problems)]


def _readout_stages(name: str, readout: ReadoutLayer, path: str, problems: _Problems
                    ) -> list[Stage]:
    projection = _projection(name, readout.linear, None, readout.norm, path, problems)
    with torch.no_grad():
        alpha = torch.exp(-readout.dt / readout.tau_u)  # as ReadoutLayer computes it
    return [projection, LeakyReadout(name, _array(alpha).astype(np.float64), path)]


def _paths(root: nn.Module) -> dict[int, str]:
    return {id(m): (n or type(root).__name__) for n, m in root.named_modules()}


def _plain_core(module: nn.Module, paths: dict[int, str], problems: _Problems, model_name: str
                ) -> tuple[int, float | torch.Tensor, str, list[Stage]]:
    """Input size, step (ms), input description and stages of a module with no front end:
    a ``MultilayeredSpiking`` stack, a ``SpikingFCLayer``, ``SpikingNeurons`` or a
    ``ReadoutLayer``.

    Raises:
        ExportError: ``module`` is none of them (the message names ``model_name``, the class
            of the model given to :func:`spiking_core`).
    """
    stages: list[Stage] = []
    if isinstance(module, MultilayeredSpiking):
        input_size, dt = module.input_size, module.layers[0].neurons.dt
        input_text = f"the stack's input per step ({input_size} values)"
        for i, layer in enumerate(module.layers):
            stages += _layer_stages(f"layer{i + 1}", layer, paths[id(layer)], problems)
    elif isinstance(module, SpikingFCLayer):
        input_size, dt = module.input_size, module.neurons.dt
        input_text = f"the layer's input per step ({input_size} values)"
        stages += _layer_stages("layer1", module, paths[id(module)], problems)
    elif isinstance(module, SpikingNeurons):
        input_size, dt = module.num_neurons, module.dt
        input_text = f"the population's input current per step ({input_size} values)"
        stages.append(_population("population", module, paths[id(module)], problems))
    elif isinstance(module, ReadoutLayer):
        input_size, dt = module.input_size, module.dt
        input_text = f"the readout's input per step ({input_size} values)"
        stages += _readout_stages("readout", module, paths[id(module)], problems)
    else:
        raise ExportError(
            f"a {model_name} has no spiking core to export: give a task model, an "
            "encoder, an AuditoryFrontEnd, a MultilayeredSpiking stack, a SpikingFCLayer, "
            "SpikingNeurons or a ReadoutLayer")
    return input_size, dt, input_text, stages


def spiking_core(model: nn.Module, label: str | None = None) -> SpikingCore:
    """The spiking core of ``model``: a task model (``sparse train``'s, as rebuilt by
    :func:`sparse.restore.restore_run`), an ``ASREncoder`` or ``KWSEncoder``, an
    ``AuditoryFrontEnd``, a ``MultilayeredSpiking`` stack, a ``SpikingFCLayer``, a
    ``SpikingNeurons`` population or a ``ReadoutLayer``. ``label`` names the model in error
    messages (default: its class).

    Raises:
        ExportError: the model holds adaptive neurons, layer normalisation or batch
            normalisation without running statistics (every case named), or is of a type
            with no spiking core.
    """
    from ..encoder_asr import ASREncoder
    from ..encoder_kws import KWSEncoder
    from ..frontend import AuditoryFrontEnd
    from ..train.model import TaskModel

    label = label or f"the {type(model).__name__}"
    paths = _paths(model)
    problems = _Problems()
    outside: list[str] = []
    task = None
    if isinstance(model, TaskModel):
        task = model
        outside.append(f"the feature standardisation ('{model.standardization}')")
        model_encoder = model.encoder
    else:
        model_encoder = model
    stages: list[Stage] = []
    if isinstance(model_encoder, (ASREncoder, KWSEncoder, AuditoryFrontEnd)):
        front = model_encoder if isinstance(model_encoder, AuditoryFrontEnd) \
            else model_encoder.front
        blocks = len(front.conv)
        last = front.conv[-1]
        outside.append(
            f"the convolutional front end ({blocks} block{'s' if blocks > 1 else ''} of causal "
            "Conv2d over time and frequency, LayerNorm and LeakyReLU): NIR has no node for "
            "LayerNorm or LeakyReLU, so the graph starts at the auditory nerve's input current")
        input_text = (f"the auditory nerve's input current, the convolutional front end's "
                      f"output per step: {last.channels} channels x {last.out_freq} "
                      f"frequencies, channel-major (index c * {last.out_freq} + f)")
        input_size = front.nerve_size
        dt = front.dt_ms
        stages.append(_population("nerve", front.nerve, paths[id(front.nerve)], problems))
        for i, layer in enumerate(front.cortex.layers):
            stages += _layer_stages(f"cortex{i + 1}", layer, paths[id(layer)], problems)
        if isinstance(model_encoder, KWSEncoder):
            stages += _readout_stages("readout", model_encoder.readout,
                                      paths[id(model_encoder.readout)], problems)
            outside.append("the softmax over the readout's membrane potentials, averaged over "
                           "time (the log of that average is the keyword log-probabilities)")
        elif isinstance(model_encoder, ASREncoder):
            head = "the MLP head" + (" and the phone classifier" if task is not None else "")
            outside.append(f"the average pooling of the last population's spikes over "
                           f"{model_encoder.pool_kernel} steps, {head}: NIR has no pooling "
                           "over time")
    else:
        input_size, dt, input_text, stages = _plain_core(
            model_encoder, paths, problems, type(model).__name__)
    problems.raise_if_any(label)
    steps = {float(m.dt) for m in model.modules() if isinstance(m, (SpikingNeurons, ReadoutLayer))}
    if len(steps) > 1:
        raise ExportError(f"{label}: its populations run at different steps "
                          f"({sorted(steps)} ms); one graph has one step")
    return SpikingCore(float(dt), int(input_size), input_text, tuple(stages), tuple(outside))
