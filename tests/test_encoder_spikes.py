"""SpikeEncoder: its neuron options as one ``neuron=NeuronConfig(...)`` and its step as
``dt_ms``; the former keywords (the options one by one, ``dt``) still build the same model for
one release, with a FutureWarning that names the new spelling."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch

from sparse.encoder_spikes import SpikeEncoder
from sparse.neuron import NEURON_OPTIONS, NeuronConfig
from sparse.snn import SpikingNeurons
from sparse.train.config import load_config
from sparse.train.model import build_model

CUSTOM = dict(tau_u_range=(4.0, 20.0), tau_w_range=(40.0, 300.0), a_range=(0.0, 3.0),
              b_range=(0.5, 1.5), normal_init=True, threshold=1.5, surrogate="arctan",
              surrogate_scale=3.0, implementation="reference", recurrent_init="orthogonal")
SMALL = dict(num_inputs=10, num_classes=4, cortex_layer_sizes=(8, 6))


def _build(seed: int = 5, **kwargs) -> SpikeEncoder:
    torch.manual_seed(seed)
    return SpikeEncoder(**SMALL, **kwargs)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_neuron_reaches_every_population_and_the_readout():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling warns about nothing
        encoder = _build(neuron=NeuronConfig(**CUSTOM), dt_ms=14.0)
    populations = [m for m in encoder.modules() if isinstance(m, SpikingNeurons)]
    assert len(populations) == 2
    for population in populations:
        assert population.threshold == 1.5 and population.normal_init is True
        assert population.tau_u_range == (4.0, 20.0) and population.implementation == "reference"
        assert population.dt == 14.0
    assert encoder.readout.implementation == "reference" and encoder.readout.dt == 14.0
    assert encoder.dt_ms == 14.0


def test_the_former_keywords_build_the_same_model_with_a_warning():
    new = _build(neuron=NeuronConfig(**CUSTOM), dt_ms=14.0)
    with pytest.warns(FutureWarning, match=r"neuron=NeuronConfig\(tau_u_range=\.\.\., "):
        with pytest.warns(FutureWarning, match=r"SpikeEncoder\(dt=\.\.\.\) is deprecated; "
                                                r"use SpikeEncoder\(dt_ms=\.\.\.\)"):
            old = _build(dt=14.0, **CUSTOM)
    assert _same_state(new, old) and repr(new) == repr(old) and old.dt_ms == 14.0
    x = (torch.rand(2, 9, 10) < 0.3).float()
    new.eval(), old.eval()
    assert torch.equal(new(x).log_probs, old(x).log_probs)
    with pytest.warns(DeprecationWarning, match=r"SpikeEncoder\.dt is deprecated; use "
                                                r"SpikeEncoder\.dt_ms"):
        assert old.dt == 14.0


def test_one_former_keyword_changes_only_its_option():
    with pytest.warns(FutureWarning, match=r"\(threshold\) are deprecated"):
        encoder = _build(threshold=2.0)
    assert encoder.cortex.layers[0].neurons.threshold == 2.0
    assert encoder.cortex.layers[0].neurons.tau_u_range == NeuronConfig().tau_u_range
    with pytest.warns(FutureWarning):
        combined = _build(neuron=NeuronConfig(threshold=2.0), threshold=2.0)
    assert combined.cortex.layers[1].neurons.threshold == 2.0


def test_defaults_are_unchanged():
    assert _same_state(_build(), _build(neuron=NeuronConfig()))
    assert _build().dt_ms == 10.0


def test_bad_keywords_are_refused_by_name():
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'tau_range'.*"
                                        + ", ".join(NEURON_OPTIONS)):
        _build(tau_range=(1.0, 2.0))
    with pytest.raises(TypeError, match="neuron must be a NeuronConfig"):
        _build(neuron=dict(threshold=1.5))
    with pytest.raises(ValueError, match="neuron= and, differently, threshold"):
        with pytest.warns(FutureWarning):
            _build(neuron=NeuronConfig(threshold=1.5), threshold=2.0)


def test_a_spike_task_config_builds_what_the_former_keywords_built():
    """The trainer's spike task hands the config's neuron section over as ``neuron=``: the
    model is the one the former keywords built (same initial weights, same options)."""
    root = Path(__file__).resolve().parent.parent
    sets = ["model.cortex_layer_sizes=[8,6]", "model.cortex_sfa_portions=[0.5,0.5]",
            "model.cortex_rnn_portions=[0.5,0.5]", "model.cortex_feedforward_portions=[1,1]",
            "neuron.cortex_lateral=[true,false]", "model.recurrent_init=orthogonal",
            "neuron.threshold=1.5", "neuron.normal_init=true",
            "neuron.implementation=reference"]
    cfg = load_config(root / "configs" / "shd.yaml", sets)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        model = build_model(cfg, 5)
    m = cfg.model
    section = {k: v for k, v in dataclasses.asdict(cfg.neuron).items()
               if k != "auditory_lateral"}
    torch.manual_seed(cfg.seed)
    with pytest.warns(FutureWarning):
        former = SpikeEncoder(
            num_inputs=700, num_classes=5, cortex_layer_sizes=list(m.cortex_layer_sizes),
            cortex_sfa_portions=list(m.cortex_sfa_portions),
            cortex_rnn_portions=list(m.cortex_rnn_portions),
            cortex_feedforward_portions=list(m.cortex_feedforward_portions),
            dropout=m.dropout, dt=cfg.features.hop_ms, normalization=m.normalization,
            readout_tau_steps=list(m.readout_tau_steps), readout_dropout=m.readout_dropout,
            recurrent_init=m.recurrent_init, batchnorm_momentum=m.batchnorm_momentum,
            **section)
    assert _same_state(model.encoder, former) and repr(model.encoder) == repr(former)
    layers = model.encoder.cortex.layers
    assert [layer.neurons.lateral for layer in layers] == [True, False]
    assert all(layer.neurons.threshold == 1.5 for layer in layers)
    assert model.encoder.dt_ms == cfg.features.hop_ms == 14.0
