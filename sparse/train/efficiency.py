"""Efficiency of a trained model, counted the way NeuroBench (v2.3) counts it.

The numbers (docs/efficiency.md defines each one):

- ``footprint_bytes``: bytes of every parameter and buffer of the model (masks and
  normalisation statistics included).
- ``connection_sparsity``: zero entries over all entries of the connection weights: each
  convolution kernel, each cortex layer's feed-forward matrix and recurrent matrix ``V``
  (with their masks applied), the KWS readout's and the ASR head's and classifier's
  matrices. Biases, normalisation and neuron parameters are not connections.
- ``activation_sparsity``: zero entries over all entries of the spike trains of every
  population (``frames x neurons``, valid frames only), per utterance, then averaged.
- ``synaptic_operations``: per utterance (then averaged), each connection layer's
  operations: one per non-zero input x non-zero weight it reaches (the bias is not an
  operation). A layer whose input holds only -1, 0 and 1 (spikes) does accumulates
  (``effective_acs``), any other input multiply-accumulates (``effective_macs``);
  ``dense`` counts every input x every weight, zeros included.

The connection layers of the encoders, in the order the signal meets them: the convolution
blocks (input: the normalised features, then the previous block's output, with the causal
zero padding in front), each cortex layer's feed-forward matrix (input: the previous
population's spikes), its recurrent matrix (input at step ``t``: the layer's own spikes of
step ``t - 1``, zeros at the first step), then the KWS readout (input: the last cortex
layer's spikes) or the ASR head's linear layers (input: the pooled spike rates, then the
previous head layer's activations) and the classifier. The auditory-nerve population has no
weights of its own: its input current is the convolution's output.

Nothing here changes the model's arithmetic: the spikes are the ones the model returns, and
the dense inputs (convolution, head) are recomputed by the model's own modules.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..encoder_asr import pool_time
from ..lengths import length_mask
from ..snn import SpikingFCLayer
from .data import FeatureSet, length_sorted_batches
from .model import TaskModel

__all__ = ["connection_sparsity", "connection_weights", "conv_operations",
           "footprint_bytes", "format_efficiency", "linear_operations", "measure_efficiency",
           "model_operations", "recurrent_operations"]


# ----------------------------------------------------------------------------- static


def footprint_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer of ``model`` (``numel x element size``)."""
    tensors = [*model.parameters(), *model.buffers()]
    return int(sum(t.numel() * t.element_size() for t in tensors))


def _front(model: TaskModel) -> nn.Module | None:
    """The auditory front end, or ``None`` for an encoder fed with spikes directly."""
    return getattr(model.encoder, "front", None)


def _cortex_layers(model: TaskModel) -> list[SpikingFCLayer]:
    front = _front(model)
    return list((model.encoder.cortex if front is None else front.cortex).layers)


def _head_linears(model: TaskModel) -> list[nn.Linear]:
    if model.classifier is None:
        return []
    return [m for m in model.encoder.head if isinstance(m, nn.Linear)]


def connection_weights(model: TaskModel) -> dict[str, torch.Tensor]:
    """The weight of every connection layer, masks applied, by layer name.

    Names: ``conv1``.., ``cortex1``.., ``cortex1_recurrent``.. (layers with recurrence),
    then ``readout`` (KWS) or ``head1``.. and ``classifier`` (ASR).
    """
    weights: dict[str, torch.Tensor] = {}
    front = _front(model)
    for i, block in enumerate(front.conv if front is not None else []):
        weights[f"conv{i + 1}"] = block.conv.weight.detach()
    for i, layer in enumerate(_cortex_layers(model)):
        weights[f"cortex{i + 1}"] = (layer.linear.weight * layer.feedforward_mask).detach()
        neurons = layer.neurons
        if neurons.V is not None:
            weights[f"cortex{i + 1}_recurrent"] = (neurons.V * neurons.recurrent_mask).detach()
    if model.classifier is None:
        weights["readout"] = model.encoder.readout.linear.weight.detach()
    else:
        for i, linear in enumerate(_head_linears(model)):
            weights[f"head{i + 1}"] = linear.weight.detach()
        weights["classifier"] = model.classifier.weight.detach()
    return weights


def connection_sparsity(model: TaskModel) -> float:
    """Zero entries over all entries of :func:`connection_weights`."""
    weights = connection_weights(model).values()
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    return zeros / total


# ----------------------------------------------------------------------------- operations


def _spiking(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` bool: whether the valid entries of ``x`` ``(batch, time, ...)`` (``valid``
    ``(batch, time)``) are all -1, 0 or 1, the inputs NeuroBench counts as spikes."""
    other = (x != 0) & (x != 1) & (x != -1)
    other = other.flatten(2).any(-1) & valid
    return ~other.any(1)


def linear_operations(x: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operations of ``y_t = W x_t`` at every valid step.

    Args:
        x: inputs ``(batch, time, n_in)``; weight: ``(n_out, n_in)``; valid: ``(batch, time)``.

    Returns:
        ``(effective, dense, spiking)``, each ``(batch,)``: non-zero inputs x non-zero
        weights they reach (int64), all inputs x all weights (int64), and whether the input
        is spikes (bool).
    """
    active = ((x != 0) & valid.unsqueeze(-1)).sum(1)  # (batch, n_in): non-zero inputs
    fan_out = (weight != 0).sum(0)  # (n_in,): non-zero weights leaving each input
    # exact integers; an elementwise product, as CUDA has no int64 matrix product
    effective = (active.to(torch.int64) * fan_out.to(torch.int64)).sum(-1)
    dense = valid.sum(1).to(torch.int64) * weight.numel()
    return effective, dense, _spiking(x, valid)


def recurrent_operations(spikes: torch.Tensor, weight: torch.Tensor, valid: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operations of ``V s_{t-1}`` at every valid step ``t`` (``s_{-1} = 0``).

    Args:
        spikes: the layer's own spikes ``(batch, time, n)``; weight: ``V`` ``(n, n)``;
            valid: ``(batch, time)``.

    Returns: as :func:`linear_operations`.
    """
    previous = F.pad(spikes, (0, 0, 1, 0))[:, :-1]  # input at step t: spikes of t - 1
    return linear_operations(previous, weight, valid)


def conv_operations(x: torch.Tensor, conv: nn.Conv2d, lengths: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operations of a causal conv block's ``Conv2d`` on valid output frames.

    Args:
        x: the block's input ``(batch, channels, time, freq)`` before the causal padding
            (the ``kernel_time - 1`` zero frames the block puts in front are counted as the
            convolution's inputs, as the layer receives them); conv: the block's ``Conv2d``;
            lengths: valid frames ``(batch,)``.

    Returns: as :func:`linear_operations`.
    """
    steps = x.shape[2]
    valid = length_mask(lengths, steps)
    kernel_time = conv.kernel_size[0]
    padded = F.pad((x != 0).to(torch.float32), (0, 0, kernel_time - 1, 0))
    ones = (conv.weight != 0).to(torch.float32)
    # every output entry counts at most channels x kernel taps, exact in float32
    per_output = F.conv2d(padded, ones, stride=conv.stride)  # (batch, out_ch, time, out_f)
    per_frame = per_output.sum(dim=(1, 3)).to(torch.float64)  # (batch, time)
    effective = (per_frame * valid).sum(1).round().to(torch.int64)
    outputs_per_frame = per_output.shape[1] * per_output.shape[3]
    dense = valid.sum(1).to(torch.int64) * outputs_per_frame * conv.weight[0].numel()
    return effective, dense, _spiking(x.transpose(1, 2), valid)


@torch.no_grad()
def model_operations(model: TaskModel, x: torch.Tensor, lengths: torch.Tensor,
                     spikes: dict[str, torch.Tensor]
                     ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per-utterance operations of every connection layer of ``model``.

    Args:
        x: features ``(batch, frames, n_mels)`` as given to ``model``; lengths: ``(batch,)``;
        spikes: the spikes ``model(x, lengths)`` returned (population -> ``(batch, frames,
            neurons)``).

    Returns:
        layer name (see :func:`connection_weights`) -> ``(effective, dense, spiking)``, each
        ``(batch,)``.
    """
    lengths = lengths.to(x.device)
    steps = x.shape[1]
    valid = length_mask(lengths, steps)
    weights = connection_weights(model)
    ops: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    front = _front(model)
    layers = _cortex_layers(model)
    cortex_inputs = [spikes[f"cortex{i}"] for i in range(1, len(layers))]
    if front is not None:
        # the front end, recomputed by its own modules from the normalised features
        h = model.standardize(x, lengths).to(front.nerve.tau_u.dtype).unsqueeze(1)
        for i, block in enumerate(front.conv):
            ops[f"conv{i + 1}"] = conv_operations(h, block.conv, lengths)
            h = block(h)
        cortex_inputs.insert(0, spikes["nerve"])
    else:  # spike input straight into the cortex
        cortex_inputs.insert(0, model.standardize(x, lengths).to(layers[0].linear.weight.dtype))
    names = [f"cortex{i + 1}" for i in range(len(layers))]
    for i, name in enumerate(names):
        ops[name] = linear_operations(cortex_inputs[i], weights[name], valid)
        if f"{name}_recurrent" in weights:
            ops[f"{name}_recurrent"] = recurrent_operations(
                spikes[name], weights[f"{name}_recurrent"], valid)
    last = spikes[names[-1]]
    if model.classifier is None:
        ops["readout"] = linear_operations(last, weights["readout"], valid)
        return ops
    encoder = model.encoder
    pooled, out_lengths = pool_time(last.transpose(0, 1), encoder.pool_kernel, lengths)
    h = pooled.transpose(0, 1)  # (batch, out frames, neurons)
    frames_valid = length_mask(out_lengths, h.shape[1])
    k = 0
    for module in encoder.head:
        if isinstance(module, nn.Linear):
            k += 1
            ops[f"head{k}"] = linear_operations(h, weights[f"head{k}"], frames_valid)
        h = module(h)
    ops["classifier"] = linear_operations(h, weights["classifier"], frames_valid)
    return ops


# ----------------------------------------------------------------------------- a data set


@torch.no_grad()
def measure_efficiency(model: TaskModel, data: FeatureSet, task: str,
                       device: torch.device | str = "cpu", batch_size: int = 32
                       ) -> dict[str, Any]:
    """The NeuroBench numbers of ``model`` on every utterance of ``data``, averaged over the
    utterances (the model is put in eval mode).

    Returns:
        ``footprint_bytes``, ``connection_sparsity``, ``activation_sparsity``,
        ``synaptic_operations`` (``effective_macs``, ``effective_acs``, ``dense``, mean per
        utterance), ``per_layer`` (the same three per connection layer), ``utterances``.
    """
    model.eval()
    layer_sums: dict[str, dict[str, float]] = {}
    sparsity_sum = 0.0
    for _, _, x, lengths in length_sorted_batches(data, task, batch_size, device):
        out = model(x, lengths)
        valid = length_mask(lengths, x.shape[1])
        fired = sum(((s != 0) & valid.unsqueeze(-1)).sum(dim=(1, 2)) for s in out.spikes.values())
        entries = lengths * sum(s.shape[-1] for s in out.spikes.values())
        sparsity_sum += float((1 - fired.double() / entries.double()).sum())
        for name, (effective, dense, spiking) in model_operations(
                model, x, lengths, out.spikes).items():
            sums = layer_sums.setdefault(name, {"effective_macs": 0.0, "effective_acs": 0.0,
                                                "dense": 0.0})
            sums["effective_acs"] += float(effective[spiking].sum())
            sums["effective_macs"] += float(effective[~spiking].sum())
            sums["dense"] += float(dense.sum())
    n = max(1, len(data))
    per_layer = {name: {k: v / n for k, v in sums.items()} for name, sums in layer_sums.items()}
    totals = {k: sum(layer[k] for layer in per_layer.values())
              for k in ("effective_macs", "effective_acs", "dense")}
    return {
        "footprint_bytes": footprint_bytes(model),
        "connection_sparsity": connection_sparsity(model),
        "activation_sparsity": sparsity_sum / n,
        "synaptic_operations": totals,
        "per_layer": per_layer,
        "utterances": len(data),
    }


def format_efficiency(eff: dict[str, Any]) -> str:
    """One line for the evaluation text."""
    ops = eff["synaptic_operations"]
    return (f"efficiency (NeuroBench, mean per utterance): footprint "
            f"{eff['footprint_bytes'] / 1024:.1f} KiB, connection sparsity "
            f"{eff['connection_sparsity']:.4f}, activation sparsity "
            f"{eff['activation_sparsity']:.4f}, synaptic operations "
            f"{ops['effective_macs']:,.0f} effective MACs + {ops['effective_acs']:,.0f} "
            f"effective ACs (dense {ops['dense']:,.0f})")
