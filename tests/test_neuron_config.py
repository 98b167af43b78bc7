"""NeuronConfig: one value for the neuron options, checked once and handed to every population;
the training config's ``neuron`` section, which builds it, and the former ``model.surrogate``."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import warnings

import pytest
import torch

from sparse.encoder_asr import ASREncoder
from sparse.encoder_kws import KWSEncoder
from sparse.frontend import AuditoryFrontEnd
from sparse.neuron import NEURON_OPTIONS, NeuronConfig
from sparse.snn import MultilayeredSpiking, SpikingFCLayer, SpikingNeurons
from sparse.surrogate import Surrogate
from sparse.train.config import (
    ConfigError,
    NeuronSection,
    config_from_dict,
    load_config,
    with_former_defaults,
)
from sparse.train.demo import demo_config
from sparse.train.model import build_model

# an option set where every value differs from every default
CUSTOM = dict(tau_u_range=(4.0, 20.0), tau_w_range=(40.0, 300.0), a_range=(0.0, 3.0),
              b_range=(0.5, 1.5), normal_init=True, threshold=1.5, surrogate="arctan",
              surrogate_scale=3.0, implementation="reference", recurrent_init="orthogonal")


def _populations(module: torch.nn.Module) -> list[SpikingNeurons]:
    return [m for m in module.modules() if isinstance(m, SpikingNeurons)]


def _assert_options(population: SpikingNeurons, options: dict) -> None:
    for name in ("tau_u_range", "tau_w_range", "a_range", "b_range", "normal_init", "threshold",
                 "implementation", "recurrent_init"):
        assert getattr(population, name) == options[name], name
    assert population.surrogate == Surrogate(options["surrogate"], options["surrogate_scale"])


# ------------------------------------------------------------------------------ the value


@pytest.mark.parametrize("options, message", [
    (dict(tau_u_range=(0.0, 25.0)), "tau_u_range must be above 0"),
    (dict(tau_w_range=(350.0, 30.0)), "tau_w_range must satisfy low <= high"),
    (dict(a_range=(1.0,)), "a_range must be a pair"),
    (dict(b_range=(0.0, float("inf"))), "b_range must satisfy low <= high with finite"),
    (dict(threshold=0.0), "threshold must be a positive number"),
    (dict(surrogate="sigmoid"), "unknown surrogate 'sigmoid'"),
    (dict(surrogate_scale=-1.0), "surrogate_scale must be a positive number"),
    (dict(implementation="cuda"), "implementation must be one of"),
    (dict(recurrent_init="zeros"), "recurrent_init must be one of"),
])
def test_bad_options_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        NeuronConfig(**options)


def test_values_are_normalised_and_frozen():
    config = NeuronConfig(tau_u_range=[4, 20], threshold=2)
    assert config.tau_u_range == (4.0, 20.0) and isinstance(config.threshold, float)
    assert config == NeuronConfig(tau_u_range=(4.0, 20.0), threshold=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.threshold = 3.0  # type: ignore[misc]


@pytest.mark.parametrize("cls", [SpikingNeurons, ASREncoder, KWSEncoder],
                         ids=lambda c: c.__name__)
def test_defaults_are_those_of_the_population_and_the_encoders(cls):
    params = inspect.signature(cls.__init__).parameters
    default = NeuronConfig()
    given = NeuronConfig(**{name: params[name].default for name in NEURON_OPTIONS})
    assert given == default


def test_training_section_defaults_are_the_configs():
    section = NeuronSection()
    default = NeuronConfig()
    for f in dataclasses.fields(section):
        if hasattr(default, f.name):
            value = getattr(section, f.name)
            assert (tuple(value) if isinstance(value, list) else value) == \
                getattr(default, f.name), f.name
    assert section.auditory_lateral is True and section.cortex_lateral is False


# ------------------------------------------------------------------------------ neuron=


@pytest.mark.parametrize("make", [
    lambda **kw: SpikingNeurons(12, rnn_portion=0.3, **kw),
    lambda **kw: SpikingFCLayer(6, 12, **kw),
    lambda **kw: MultilayeredSpiking(6, [12, 8], **kw),
], ids=["SpikingNeurons", "SpikingFCLayer", "MultilayeredSpiking"])
def test_neuron_builds_what_the_keywords_build(make):
    torch.manual_seed(3)
    by_keywords = make(**CUSTOM)
    torch.manual_seed(3)
    by_config = make(neuron=NeuronConfig(**CUSTOM))
    a, b = by_keywords.state_dict(), by_config.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for population in _populations(by_config):
        _assert_options(population, CUSTOM)


def test_a_keyword_that_contradicts_neuron_is_an_error():
    neuron = NeuronConfig(threshold=1.5)
    with pytest.raises(ValueError, match=r"threshold=2\.0 \(neuron has 1\.5\)"):
        SpikingFCLayer(6, 4, threshold=2.0, neuron=neuron)
    # the same value twice, or a keyword left at its default, is no contradiction
    layer = SpikingFCLayer(6, 4, threshold=1.5, neuron=neuron)
    assert layer.neurons.threshold == 1.5
    # SpikingFCLayer's own defaults (normal_init, ranges) give way to neuron's
    assert layer.neurons.normal_init is False and layer.neurons.tau_w_range == (30.0, 350.0)
    with pytest.raises(TypeError, match="neuron must be a NeuronConfig"):
        SpikingNeurons(4, neuron=dict(threshold=1.5))


def test_front_end_takes_one_config_for_nerve_and_cortex():
    front = AuditoryFrontEnd(20, [2], [3, 3], [1], [8, 6], [0.5, 0.5], [0.5, 0.5], [1.0, 1.0],
                             0.0, 10.0, auditory_rnn_portion=0.2,
                             neuron=NeuronConfig(**CUSTOM))
    populations = _populations(front)
    assert len(populations) == 3
    for population in populations:
        _assert_options(population, CUSTOM)
    with pytest.raises(TypeError, match="neuron must be a NeuronConfig"):
        AuditoryFrontEnd(20, [2], [3, 3], [1], [8], [0.5], [0.5], [1.0], 0.0, 10.0,
                         neuron="boxcar")


@pytest.mark.parametrize("cls", [ASREncoder, KWSEncoder], ids=lambda c: c.__name__)
def test_encoders_hand_their_keywords_to_every_population(cls):
    extra = dict(num_classes=3) if cls is KWSEncoder else dict(phoneme_ctc_rate_hz=50)
    encoder = cls(num_mel_bins=12, auditory_channels=[2], auditory_kernel_size=[3, 3],
                  cortex_layer_sizes=[8, 6], cortex_feedforward_portions=[1.0, 1.0],
                  cortex_sfa_portions=[0.5, 0.5], cortex_rnn_portions=[0.5, 0.5], dt=10.0,
                  **extra, **CUSTOM)
    populations = _populations(encoder)
    assert len(populations) == 3
    for population in populations:
        _assert_options(population, CUSTOM)
    if cls is KWSEncoder:
        assert encoder.readout.implementation == "reference"


# ------------------------------------------------------------------------------ training


SET = ["neuron.tau_u_range=[4,20]", "neuron.tau_w_range=[40,300]", "neuron.a_range=[0,3]",
       "neuron.b_range=[0.5,1.5]", "neuron.normal_init=true", "neuron.threshold=1.5",
       "neuron.surrogate=arctan", "neuron.surrogate_scale=3.0",
       "neuron.implementation=reference", "model.recurrent_init=orthogonal",
       "neuron.auditory_lateral=false", "neuron.cortex_lateral=[true,false]",
       "model.cortex_layer_sizes=[8,6]", "model.auditory_channels=[2]"]


@pytest.mark.parametrize("task", ["kws", "asr"])
def test_sparse_train_set_reaches_the_layers(task, monkeypatch, tmp_path):
    """``sparse train --set neuron.*`` builds a model whose populations have the options."""
    import sparse.train.run as run
    from sparse.cli import main

    seen = {}

    def fake_run(cfg, out, resume=False, verbose=True):
        seen["cfg"] = cfg
        return {"run_dir": str(out)}

    monkeypatch.setattr(run, "train_run", fake_run)
    args = ["train", "--out", str(tmp_path / "run"), "--set", f"task={task}"]
    for item in SET:
        args += ["--set", item]
    assert main(args) == 0
    model = build_model(seen["cfg"], 5)
    nerve, *cortex = _populations(model)
    assert len(cortex) == 2
    for population in (nerve, *cortex):
        _assert_options(population, CUSTOM)
    assert nerve.lateral is False
    assert [p.lateral for p in cortex] == [True, False]
    if task == "kws":
        assert model.encoder.readout.implementation == "reference"


@pytest.mark.parametrize("task, tiny", [("kws", True), ("asr", True), ("kws", False),
                                        ("asr", False)])
def test_demo_configs_build_the_model_the_keywords_built(task, tiny, monkeypatch):
    """The 'neuron' section's defaults leave the models as the trainer built them before the
    section existed, passing the encoders its 'model' keywords and the surrogate only:
    bitwise-equal initial weights."""
    import sparse.encoder_asr as encoder_asr_module
    import sparse.encoder_kws as encoder_kws_module

    cfg = demo_config(task, tiny=tiny)
    new = build_model(cfg, 7).encoder.state_dict()

    def as_before(cls):
        def make(**keywords):
            for name in NEURON_SECTION_KEYS - {"surrogate"}:
                keywords.pop(name)
            return cls(**keywords)
        return make

    # the task objects import the encoders from their modules when they build a network
    monkeypatch.setattr(encoder_kws_module, "KWSEncoder", as_before(KWSEncoder))
    monkeypatch.setattr(encoder_asr_module, "ASREncoder", as_before(ASREncoder))
    old = build_model(cfg, 7).encoder.state_dict()
    assert old.keys() == new.keys()
    different = [k for k in old if not torch.equal(old[k], new[k])]
    assert not different, different


NEURON_SECTION_KEYS = {f.name for f in dataclasses.fields(NeuronSection)}


# ------------------------------------------------------------------------------ model.surrogate


def test_model_surrogate_still_works_with_a_warning():
    with pytest.warns(FutureWarning, match=r"'model\.surrogate' is deprecated.*'neuron\.surr"):
        cfg = load_config(None, ["model.surrogate=triangle", "model.cortex_layer_sizes=[4]",
                                 "model.cortex_sfa_portions=[0.5]",
                                 "model.cortex_rnn_portions=[0.5]",
                                 "model.cortex_feedforward_portions=[1.0]"])
    assert cfg.neuron.surrogate == "triangle"
    assert not hasattr(cfg.model, "surrogate")
    for population in _populations(build_model(cfg, 3)):
        assert population.surrogate.name == "triangle"
    with pytest.warns(FutureWarning), pytest.raises(ConfigError, match="must be one of"):
        load_config(None, ["model.surrogate=sigmoid"])


def test_model_surrogate_and_neuron_surrogate_must_agree():
    with pytest.raises(ConfigError, match=r"'model\.surrogate' \('arctan'\) and "
                                          r"'neuron\.surrogate' \('triangle'\) disagree"):
        config_from_dict({"model": {"surrogate": "arctan"}, "neuron": {"surrogate": "triangle"}})
    with pytest.warns(FutureWarning):  # the same value in both places is no conflict
        cfg = config_from_dict({"model": {"surrogate": "arctan"},
                                "neuron": {"surrogate": "arctan"}})
    assert cfg.neuron.surrogate == "arctan"


def test_a_stored_config_without_neuron_section_loads_quietly_to_the_same_config():
    stored = demo_config("kws", tiny=True).to_dict()
    stored["model"]["surrogate"] = stored.pop("neuron")["surrogate"]  # as stored before
    original = copy.deepcopy(stored)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = config_from_dict(with_former_defaults(stored))
    assert cfg == demo_config("kws", tiny=True)
    assert "neuron" not in original  # (the test's premise)


def test_the_tables_implementations_are_the_layers():
    from sparse.kernels.dispatch import IMPLEMENTATIONS
    from sparse.train.validate import _IMPLEMENTATIONS

    assert _IMPLEMENTATIONS == IMPLEMENTATIONS


def test_front_end_step_is_dt_ms_and_former_dt_warns():
    args = (20, [2], [3, 3], [1], [8], [0.5], [0.5], [1.0], 0.0)
    front = AuditoryFrontEnd(*args, dt_ms=10.0)
    assert front.dt_ms == 10.0 and front.nerve.dt == 10.0
    with pytest.warns(DeprecationWarning, match=r"AuditoryFrontEnd\.dt is deprecated; use "
                                                r"AuditoryFrontEnd\.dt_ms"):
        assert front.dt == 10.0
    torch.manual_seed(0)
    new = AuditoryFrontEnd(*args, dt_ms=10.0)
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match=r"AuditoryFrontEnd\(dt=\.\.\.\) is deprecated; use "
                                           r"AuditoryFrontEnd\(dt_ms=\.\.\.\)"):
        former = AuditoryFrontEnd(*args, dt=10.0)
    for (name, a), (_, b) in zip(new.state_dict().items(), former.state_dict().items(),
                                 strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    with pytest.raises(TypeError, match="give only dt_ms"):
        AuditoryFrontEnd(*args, dt=10.0, dt_ms=10.0)


def test_pooling_kernel_takes_dt_ms_and_former_dt_warns():
    from sparse.frontend import pooling_kernel

    assert pooling_kernel(dt_ms=2.0, rate_hz=25.0) == 20 == pooling_kernel(2.0, 25.0)
    with pytest.warns(FutureWarning, match=r"pooling_kernel\(dt=\.\.\.\) is deprecated; use "
                                           r"pooling_kernel\(dt_ms=\.\.\.\)"):
        assert pooling_kernel(dt=2.0, rate_hz=25.0) == 20
    with pytest.raises(ValueError, match=r"\(dt=2.0 ms\)"):
        pooling_kernel(2.0, 30.0)
