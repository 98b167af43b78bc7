"""The NeuroBench numbers of ``sparse evaluate`` (sparse.train.efficiency): operations counted
by hand on tiny layers, by plain loops on a tiny model's own spikes, and by the ``neurobench``
package itself on the same models (its Benchmark over a network that calls, as modules,
every connection layer of ours on the very inputs our model gives it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from sparse.train.config import config_from_dict
from sparse.train.data import FeatureSet
from sparse.train.efficiency import (
    connection_sparsity,
    connection_weights,
    conv_operations,
    footprint_bytes,
    linear_operations,
    measure_efficiency,
    model_operations,
    recurrent_operations,
)
from sparse.train.model import TaskModel, build_model

from .helpers import reference_library

NEUROBENCH_HINT = "bash scripts/setup_env.sh test (installs neurobench)"

# ----------------------------------------------------------------------------- by hand


def test_linear_operations_by_hand():
    # 3 steps, 2 inputs; the third step is padding (its spike must not count)
    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]]])
    w = torch.tensor([[0.5, 0.0], [0.0, -1.0], [2.0, 0.0]])  # fan-out: input 0 -> 2, 1 -> 1
    valid = torch.tensor([[True, True, False]])
    effective, dense, spiking = linear_operations(x, w, valid)
    # input 0 spikes twice (2 x 2 ops), input 1 once (1 op); 2 steps x 6 weights in all
    assert effective.tolist() == [5] and dense.tolist() == [12] and spiking.tolist() == [True]
    effective, _, spiking = linear_operations(x * 0.5, w, valid)
    assert effective.tolist() == [5] and spiking.tolist() == [False]  # 0.5: not a spike


def test_recurrent_operations_by_hand():
    s = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    v = torch.tensor([[0.0, 0.3], [0.7, 0.0]])  # each neuron reaches the other one
    valid = torch.ones(1, 3, dtype=torch.bool)
    effective, dense, spiking = recurrent_operations(s, v, valid)
    # step 1 gets the 1 spike of step 0, step 2 the 1 spike of step 1; the 2 spikes of the
    # last step reach no later step
    assert effective.tolist() == [2] and dense.tolist() == [3 * 4] and spiking.item()


def test_conv_operations_by_hand():
    conv = nn.Conv2d(1, 1, (2, 2), bias=True)
    with torch.no_grad():
        # taps [previous frame, current frame] x [freq f, f + 1]; one tap is zero
        conv.weight.copy_(torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]]))
    x = torch.tensor([[[[1.0, 0.0, 2.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.0]]]])  # (1, 1, 3, 3)
    # frame 0 (previous frame: the causal zero padding): f0 sees 1 on a weight -> 1, f1 sees
    # 2 only on the zero tap -> 0; frame 1 (previous = frame 0): f0 -> 1, f1 -> 1; frame 2
    # (previous = zeros): f0 sees 3 on the zero tap -> 0, f1 sees 3 on a weight -> 1
    effective, dense, spiking = conv_operations(x, conv, torch.tensor([3]))
    assert effective.tolist() == [4] and dense.tolist() == [3 * 2 * 4]
    assert spiking.tolist() == [False]
    effective, dense, _ = conv_operations(x, conv, torch.tensor([2]))
    assert effective.tolist() == [3] and dense.tolist() == [2 * 2 * 4]


# ----------------------------------------------------------------------------- tiny models


def tiny_model(task: str, seed: int = 0, gain: float = 6.0) -> TaskModel:
    model = {
        "auditory_channels": [3], "auditory_kernel_size": [3, 3],
        "auditory_frequency_stride": [2], "cortex_layer_sizes": [8, 6],
        "cortex_sfa_portions": [0.5, 0.5], "cortex_rnn_portions": [0.5, 0.0],
        "cortex_feedforward_portions": [0.5, 1.0], "phoneme_num_layers": 2,
        "phoneme_features": 5,
    }
    if task == "asr":  # two conv blocks too
        model.update(auditory_channels=[2, 3], auditory_frequency_stride=[1, 2])
    cfg = config_from_dict({
        "task": task, "seed": seed, "model": model,
        "features": {"n_mels": 12, "hop_ms": 10.0, "standardization": "utterance"},
    })
    net = build_model(cfg, 4)
    with torch.no_grad():  # stronger synapses, so that every population spikes
        for layer in net.encoder.front.cortex.layers:
            layer.linear.weight.mul_(gain)
            if layer.neurons.V is not None:
                layer.neurons.V.mul_(gain)
    net.eval()
    return net


def tiny_set(task: str, lengths=(9, 4, 13, 7, 1)) -> FeatureSet:
    gen = torch.Generator().manual_seed(1)
    feats = [3.0 * torch.randn(n, 12, generator=gen) for n in lengths]
    targets = ([i % 4 for i in range(len(lengths))] if task == "kws"
               else [torch.tensor([i % 4]) for i in range(len(lengths))])
    return FeatureSet(ids=[f"u{i}" for i in range(len(lengths))], features=feats,
                      targets=targets, speakers=["s"] * len(lengths),
                      classes=["a", "b", "c", "d"], split="test")


@pytest.mark.parametrize("task", ["kws", "asr"])
def test_model_operations_equal_loops_over_the_spikes(task):
    """The cortex, recurrence and readout counts equal plain loops over each spike."""
    model = tiny_model(task)
    data = tiny_set(task, lengths=(6, 3))
    x = torch.nn.utils.rnn.pad_sequence(data.features, batch_first=True)
    lengths = torch.tensor([6, 3])
    with torch.no_grad():
        out = model(x, lengths)
    ops = model_operations(model, x, lengths, out.spikes)
    weights = connection_weights(model)
    names = model.encoder.population_names
    assert sum(int(s.sum()) for s in out.spikes.values()) > 0, "no spike: nothing is tested"
    for b, length in enumerate(lengths.tolist()):
        expected: dict[str, int] = {}
        for i in range(1, len(names)):
            w = weights[names[i]]
            source = out.spikes[names[i - 1]][b]
            expected[names[i]] = sum(1 for t in range(length) for j in range(w.shape[1])
                                     for k in range(w.shape[0])
                                     if source[t, j] != 0 and w[k, j] != 0)
            if f"{names[i]}_recurrent" in weights:
                v = weights[f"{names[i]}_recurrent"]
                own = out.spikes[names[i]][b]
                expected[f"{names[i]}_recurrent"] = sum(
                    1 for t in range(1, length) for j in range(v.shape[1])
                    for k in range(v.shape[0]) if own[t - 1, j] != 0 and v[k, j] != 0)
        if task == "kws":
            w = weights["readout"]
            last = out.spikes[names[-1]][b]
            expected["readout"] = sum(1 for t in range(length) for j in range(w.shape[1])
                                      for k in range(w.shape[0])
                                      if last[t, j] != 0 and w[k, j] != 0)
        for name, count in expected.items():
            effective, dense, spiking = (v[b] for v in ops[name])
            assert int(effective) == count, name
            assert bool(spiking), name
            assert int(dense) == length * weights[name].numel(), name


def test_static_numbers():
    model = tiny_model("kws")
    by_hand = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    assert footprint_bytes(model) == by_hand  # every parameter and buffer, once
    w = model.encoder.front.cortex.layers[0]
    zeros = int((w.feedforward_mask == 0).sum())
    assert zeros > 0  # ff_portion 0.5: masked connections count as zero weights
    weights = connection_weights(model)
    assert set(weights) == {"conv1", "cortex1", "cortex1_recurrent", "cortex2", "readout"}
    total = sum(t.numel() for t in weights.values())
    all_zeros = sum(int((t == 0).sum()) for t in weights.values())
    assert connection_sparsity(model) == all_zeros / total
    assert all_zeros >= zeros + 8  # the mask, and at least V's zero diagonal


# ----------------------------------------------------------------------------- NeuroBench


class SpikeTap(nn.Module):
    """Hands a population's spike train to NeuroBench's activation hooks."""

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes


class Replay(nn.Module):
    """The model as NeuroBench can see it: one utterance ``(1, frames, n_mels)`` runs through
    the model (whose convolutions, and ASR head and classifier, are modules NeuroBench hooks);
    then every other connection layer is called as an ``nn.Linear`` on the input it has in
    the model: each cortex layer's own ``linear`` on the spikes of the population before it,
    a copy of its recurrent matrix on its spikes one step late, the KWS readout's ``linear``
    on the last population's spikes. Each population's spikes also pass a :class:`SpikeTap`."""

    def __init__(self, model: TaskModel) -> None:
        super().__init__()
        self.model = model
        names = model.encoder.population_names
        self.taps = nn.ModuleDict({name: SpikeTap() for name in names})
        self.recurrent = nn.ModuleDict()
        for i, layer in enumerate(model.encoder.front.cortex.layers):
            if layer.neurons.V is not None:
                n = layer.neurons.num_neurons
                copy = nn.Linear(n, n, bias=False)
                with torch.no_grad():
                    copy.weight.copy_(layer.neurons.V * layer.neurons.recurrent_mask)
                self.recurrent[names[i + 1]] = copy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x, torch.tensor([x.shape[1]]))
        names = self.model.encoder.population_names
        for name in names:
            self.taps[name](out.spikes[name])
        for i, layer in enumerate(self.model.encoder.front.cortex.layers):
            layer.linear(out.spikes[names[i]])
            if names[i + 1] in self.recurrent:
                own = out.spikes[names[i + 1]]
                self.recurrent[names[i + 1]](F.pad(own, (0, 0, 1, 0))[:, :-1])
        if self.model.classifier is None:
            self.model.encoder.readout.linear(out.spikes[names[-1]])
        return out.scores


def neurobench_numbers(model: TaskModel, data: FeatureSet) -> dict:
    """NeuroBench's own numbers: its Benchmark over the utterances one at a time."""
    reference_library("neurobench", NEUROBENCH_HINT)
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel

    loader = torch.utils.data.DataLoader(
        [(f, torch.tensor(0)) for f in data.features], batch_size=1, shuffle=False)
    wrapped = TorchModel(Replay(model))
    wrapped.add_activation_module(SpikeTap)
    bench = Benchmark(wrapped, loader, [], [],
                      [[ConnectionSparsity], [ActivationSparsity, SynapticOperations]])
    with torch.no_grad():
        results = bench.run(quiet=True)
    results["Footprint"] = Footprint()(TorchModel(model))  # the model itself, no copies
    return results


def assert_agree(ours: dict, theirs: dict) -> None:
    assert ours["footprint_bytes"] == theirs["Footprint"]
    assert round(ours["connection_sparsity"], 4) == theirs["ConnectionSparsity"]
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-12)
    ops, ref = ours["synaptic_operations"], theirs["SynapticOperations"]
    assert ops["effective_macs"] == pytest.approx(ref["Effective_MACs"], rel=1e-12)
    assert ops["effective_acs"] == pytest.approx(ref["Effective_ACs"], rel=1e-12)
    assert ops["dense"] == pytest.approx(ref["Dense"], rel=1e-12)


@pytest.mark.parametrize("task", ["kws", "asr"])
def test_agrees_with_neurobench(task):
    model = tiny_model(task)
    data = tiny_set(task)
    # batches of 2 utterances of different lengths: the padding must not count
    ours = measure_efficiency(model, data, task, batch_size=2)
    theirs = neurobench_numbers(model, data)
    assert_agree(ours, theirs)
    ops = ours["synaptic_operations"]
    # the test means something: spikes and silences, both kinds of operations, zero weights
    assert 0 < ours["activation_sparsity"] < 1
    assert ops["effective_macs"] > 0 and ops["effective_acs"] > 0
    assert ops["effective_macs"] + ops["effective_acs"] < ops["dense"]
    assert 0 < ours["connection_sparsity"] < 1
    assert set(ours["per_layer"]) == set(connection_weights(model))
    for name, layer in ours["per_layer"].items():  # every layer is exercised
        assert layer["effective_macs"] + layer["effective_acs"] > 0, name


# ----------------------------------------------------------------------------- the command


def test_evaluate_writes_the_neurobench_numbers(corpus, tmp_path, capsys):
    """``sparse evaluate`` of a trained checkpoint: its JSON holds NeuroBench's own numbers
    for the model on the utterances it evaluated, and its summary prints them."""
    from sparse.cli import main
    from sparse.train.checkpoints import load_checkpoint, load_model_state
    from sparse.train.config import load_config
    from sparse.train.data import load_split, resolve_corpus
    from sparse.train.run import train_run

    cfg = load_config(None, [
        "task=kws", f"data.synth_dir={corpus}", "data.synth_preset=tiny",
        "features.n_mels=20", "features.hop_ms=20.0", "model.auditory_channels=[4]",
        "model.auditory_kernel_size=[3,5]", "model.auditory_frequency_stride=[2]",
        "model.cortex_layer_sizes=[16]", "model.cortex_sfa_portions=[0.5]",
        "model.cortex_rnn_portions=[0.5]", "model.cortex_feedforward_portions=[0.5]",
        "train.epochs=1", "train.batch_size=16", "train.num_threads=1", "train.progress=false",
        "train.evaluate_test=false"])
    run = Path(train_run(cfg, tmp_path / "run", verbose=False)["run_dir"])
    best = run / "checkpoints" / "best.pt"
    capsys.readouterr()
    assert main(["evaluate", str(best), "--split", "valid", "--limit", "6",
                 "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    ours = json.loads((tmp_path / "eval" / "valid.json").read_text())["efficiency"]
    assert "efficiency (NeuroBench, mean per utterance)" in printed
    assert f"connection sparsity {ours['connection_sparsity']:.4f}" in printed
    assert ours["utterances"] == 6

    state = load_checkpoint(best)
    model = build_model(cfg, len(state["classes"]))
    load_model_state(model, state["model"], best)
    data = load_split(cfg, resolve_corpus(cfg), "valid", 6)
    assert_agree(ours, neurobench_numbers(model, data))
    assert 0 < ours["activation_sparsity"] < 1
