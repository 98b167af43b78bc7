"""Stage 1 of the analysis pipeline: run an encoder on utterances and keep its activity.

This is the only place where the analysis meets a model: :func:`collect_activity` runs the
encoder (eval mode, no gradients) on each utterance and on a Gaussian-noise control of the
same length and loudness, and returns plain arrays (:class:`Activity`) that the later
stages (:mod:`.coupling`, :mod:`.figures`, :mod:`.outputs`) read without the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..params import count_parameters, format_parameter_table
from ..snn import SpikingFCLayer, SpikingNeurons
from .signals import waveform_to_rate

__all__ = ["Activity", "Featurizer", "Utterance", "collect_activity", "spiking_parameters"]

Featurizer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Utterance:
    """One utterance to analyse: ``waveform`` ``(samples,)`` at ``sample_rate`` Hz, and its
    phone ``segments`` ``(start s, end s, phone)`` when the corpus has them."""

    id: str
    waveform: Any
    sample_rate: int
    segments: list[tuple[float, float, str]] | None = None


@dataclass
class Activity:
    """What an encoder did on a set of utterances and on their noise controls.

    Attributes:
        utterances: the utterances, in order.
        dt_ms: the encoder's step in ms (every array below is sampled at ``1000 / dt_ms`` Hz).
        speech: ``{population: [per utterance u: (T_u, N) spikes, float32 0/1]}``, with
            ``"input"`` first: the waveform brought to the spike rate, ``(T_u,)``.
        control: the same for the Gaussian-noise control of each utterance.
        features: per utterance, the encoder's input features ``(T_u, mels)``.
        control_features: the same for the noise controls.
        parameters: neuron parameters and weights by population
            (:func:`spiking_parameters`).
        parameter_table: stored and effective parameter counts per module (text).
    """

    utterances: list[Utterance]
    dt_ms: float
    speech: dict[str, list[np.ndarray]]
    control: dict[str, list[np.ndarray]]
    features: list[np.ndarray]
    control_features: list[np.ndarray]
    parameters: dict[str, dict[str, np.ndarray]]
    parameter_table: str

    @property
    def ids(self) -> list[str]:
        """The utterance ids, in order."""
        return [u.id for u in self.utterances]

    @property
    def population_names(self) -> list[str]:
        """The spiking populations (``input`` left out), in the encoder's order."""
        return [n for n in self.speech if n != "input"]


def spiking_parameters(encoder: torch.nn.Module) -> dict[str, dict[str, np.ndarray]]:
    """Neuron parameters and weights of every spiking population, by population name.

    Returns ``{name: {"tau_u", "tau_w", "a", "b", "adaptive", "W"?, "V"?, "V_mask"?}}``
    (arrays); names follow the encoder's ``population_names`` when it has them.
    """
    names = list(getattr(encoder, "population_names", []))
    out: dict[str, dict[str, np.ndarray]] = {}
    layers = {id(m.neurons): m for m in encoder.modules() if isinstance(m, SpikingFCLayer)}
    pops = [m for m in encoder.modules() if isinstance(m, SpikingNeurons)]
    for i, pop in enumerate(pops):
        name = names[i] if i < len(names) else f"population{i + 1}"
        entry = {
            "tau_u": pop.tau_u.detach().cpu().numpy(),
            "tau_w": pop.tau_w.detach().cpu().numpy(),
            "a": pop.a.detach().cpu().numpy(),
            "b": pop.b.detach().cpu().numpy(),
            "adaptive": pop.adaptation_mask.cpu().numpy(),
        }
        layer = layers.get(id(pop))
        if layer is not None:
            mask = layer.feedforward_mask.cpu().numpy()
            entry["W"] = layer.linear.weight.detach().cpu().numpy()[mask]
        if pop.V is not None:
            entry["V"] = pop.V.detach().cpu().numpy()
            entry["V_mask"] = pop.recurrent_mask.cpu().numpy()
        out[name] = entry
    return out


@torch.no_grad()
def population_spikes(encoder: torch.nn.Module, featurize: Featurizer, waveform: torch.Tensor
                      ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Spikes ``{name: (T, N)}`` of one utterance (``waveform`` ``(samples,)``) and its
    features ``(T, mels)``."""
    wav = waveform.reshape(1, -1).float()
    feats, frame_lengths = featurize(wav, torch.tensor([wav.shape[1]]))
    feats = feats[:, : int(frame_lengths[0])]
    out = encoder(feats)
    spikes = out.spikes if hasattr(out, "spikes") else out[-1]
    return ({k: v[0].cpu().numpy().astype(np.float32) for k, v in spikes.items()},
            feats[0].cpu().numpy())


def noise_like(waveform: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise of the shape and RMS loudness of ``waveform`` (the noise control)."""
    rms = waveform.float().pow(2).mean().sqrt().clamp_min(1e-4)
    return torch.randn(waveform.shape, generator=generator) * rms


def collect_activity(
    encoder: torch.nn.Module,
    utterances: Sequence[Utterance],
    featurize: Featurizer,
    dt_ms: float,
    *,
    noise_seed: int = 0,
    progress: bool = True,
) -> Activity:
    """Run ``encoder`` (put in eval mode) on every utterance and its noise control.

    Args:
        encoder: an encoder whose output carries ``spikes`` ``{population: (1, T, N)}``.
        utterances: the utterances (waveforms at their sample rate).
        featurize: ``(waveforms (B, S), lengths (B,)) -> (features (B, T, mels), lengths)``,
            the same front end the model was trained with.
        dt_ms: the model's step in ms.
        noise_seed: seed of the generator that draws the noise controls, one after the other
            in utterance order.
        progress: show a progress bar.

    Returns:
        :class:`Activity` (plain arrays; the model is no longer needed).
    """
    if len(utterances) == 0:
        raise ValueError("collect_activity: no utterances to analyse")
    encoder.eval()
    gen = torch.Generator().manual_seed(noise_seed)
    activity = Activity(list(utterances), dt_ms, {}, {}, [], [],
                        spiking_parameters(encoder),
                        format_parameter_table(count_parameters(encoder)))
    iterator: Any = utterances
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(utterances, desc="running the model", unit="utt", leave=False)
    for utt in iterator:
        wav = torch.as_tensor(np.asarray(utt.waveform), dtype=torch.float32).reshape(-1)
        noise = noise_like(wav, gen)
        for inputs, into, features in ((wav, activity.speech, activity.features),
                                       (noise, activity.control, activity.control_features)):
            spikes, feats = population_spikes(encoder, featurize, inputs)
            steps = next(iter(spikes.values())).shape[0]
            into.setdefault("input", []).append(
                waveform_to_rate(inputs.numpy(), utt.sample_rate, dt_ms, steps))
            for name, value in spikes.items():
                into.setdefault(name, []).append(value)
            features.append(feats)
    return activity
