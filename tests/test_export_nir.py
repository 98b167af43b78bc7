"""NIR export: the written graph, integrated by NIR's own equations, gives sparse's spikes; a
round trip through a file rebuilds layers with identical spikes; batch normalisation folds
exactly; what has no exact form (adaptive neurons, layer normalisation) is refused by name;
``sparse export`` runs as a real process and fails with one paragraph and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from sparse.encoder_kws import KWSEncoder
from sparse.export.core import ExportError, Projection, spiking_core
from sparse.export.nir import NIRError, from_nir, to_nir, write_nir
from sparse.snn import MultilayeredSpiking, SpikingFCLayer
from sparse.train.checkpoints import save_checkpoint
from sparse.train.config import load_config
from sparse.train.model import build_model
from sparse.train.restore import restore_run

#: a tiny model with LIF neurons only (exportable); the task and normalisation vary per test
TINY_MODEL = [
    "features.n_mels=16", "features.hop_ms=10.0", "model.auditory_channels=[2]",
    "model.auditory_kernel_size=[3,5]", "model.auditory_frequency_stride=[2]",
    "model.cortex_layer_sizes=[16,12]", "model.cortex_sfa_portions=[0.0,0.0]",
    "model.cortex_rnn_portions=[0.5,0.0]", "model.cortex_feedforward_portions=[1.0,0.8]",
    "model.phoneme_num_layers=1", "model.phoneme_features=8",
]


@torch.no_grad()
def _randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Batch-norm running statistics and affine parameters far from the identity, so that a
    wrong fold shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) * 2 + 0.2)
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.3)


def _checkpoint(path: Path, task: str, *overrides: str) -> Path:
    cfg = load_config(None, [f"task={task}", *TINY_MODEL, *overrides])
    model = build_model(cfg, 5)
    _randomise_norms(model)
    with torch.no_grad():  # the initial weights are too small for lively spiking without norms
        for layer in model.encoder.front.cortex.layers:
            layer.linear.weight.mul_(4.0)
    save_checkpoint({"config": cfg.to_dict(), "model": model.state_dict(),
                     "classes": ["yes", "no", "up", "down", "left"]}, path)
    return path


def _spike_input(batch: int, steps: int, size: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, size, generator=g) < 0.3).to(dtype) * 1.5


def _current(batch: int, steps: int, size: int, seed: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, steps, size, generator=g) * 0.6 + 0.25).to(dtype)


@torch.no_grad()
def _core_outputs(encoder: KWSEncoder, current: torch.Tensor, lengths=None) -> dict:
    """What the encoder's spiking core computes from the nerve's input current."""
    front = encoder.front
    nerve = front.nerve(current, lengths)
    _, cortex = front.cortex(nerve, lengths, return_all_spikes=True)
    out = {"nerve": nerve}
    out.update({f"cortex{i + 1}": s for i, s in enumerate(cortex)})
    out["readout"] = encoder.readout(cortex[-1], lengths)
    return out


def _tiny_kws(dtype=torch.float64, normalization: str = "batchnorm") -> KWSEncoder:
    torch.manual_seed(3)
    enc = KWSEncoder(num_mel_bins=16, num_classes=5, auditory_channels=[2],
                     auditory_kernel_size=(3, 5), auditory_frequency_stride=[2],
                     cortex_layer_sizes=[16, 12], cortex_sfa_portions=[0.0, 0.0],
                     cortex_rnn_portions=[0.5, 0.0], cortex_feedforward_portions=[1.0, 0.8],
                     dropout=0.1, dt=2.0, normalization=normalization)
    _randomise_norms(enc)
    return enc.to(dtype).eval()


# ----------------------------------------------------------------------------- NIR's equations


def _simulate_nir(graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Integrate the graph as NIR defines its nodes, independently of sparse: forward Euler at
    the ``dt`` of its metadata, ``v += dt/tau (v_leak - v + r I)``; a LIF spikes when
    ``v > v_threshold`` and then drops by ``v_threshold - v_reset``; a recurrent edge carries
    the previous step's spikes. ``x`` ``(batch, time, in)``; returns each node's output."""
    dt = float(graph.metadata["dt"])
    successor = dict(graph.edges)
    chain, key = [], next(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
    while not isinstance(graph.nodes[successor[key]], nir.Output):
        key = successor[key]
        chain.append((key, graph.nodes[key]))
    batch, steps, _ = x.shape
    state: dict[str, dict] = {}
    out: dict[str, list] = {k: [] for k, _ in chain}
    for t in range(steps):
        y = x[:, t]
        for key, node in chain:
            if isinstance(node, nir.Affine):
                y = y @ node.weight.T + node.bias
            elif isinstance(node, nir.Linear):
                y = y @ node.weight.T
            elif isinstance(node, (nir.LIF, nir.NIRGraph)):
                lif, rec = node, None
                if isinstance(node, nir.NIRGraph):
                    lif = next(n for n in node.nodes.values() if isinstance(n, nir.LIF))
                    rec = next(n for n in node.nodes.values() if isinstance(n, nir.Linear))
                s = state.setdefault(key, {"v": np.zeros((batch, lif.tau.size)),
                                           "z": np.zeros((batch, lif.tau.size))})
                current = y if rec is None else y + s["z"] @ rec.weight.T
                v = s["v"] + dt / lif.tau * (lif.v_leak - s["v"] + lif.r * current)
                z = (v > lif.v_threshold).astype(np.float64)
                s["v"] = v - z * (lif.v_threshold - lif.v_reset)
                s["z"] = z
                y = z
            elif isinstance(node, nir.LI):
                s = state.setdefault(key, {"v": np.zeros((batch, node.tau.size))})
                s["v"] = s["v"] + dt / node.tau * (node.v_leak - s["v"] + node.r * y)
                y = s["v"]
            else:
                raise AssertionError(f"unexpected node {type(node).__name__}")
            out[key].append(y)
    return {k: np.stack(v, axis=1) for k, v in out.items()}


def test_nir_equations_integrated_at_dt_give_sparse_spikes(tmp_path):
    enc = _tiny_kws(torch.float64)
    path, _ = write_nir(enc, tmp_path / "kws.nir")
    graph = nir.read(path)
    current = _current(2, 150, enc.front.nerve_size, seed=1, dtype=torch.float64)
    ours = _core_outputs(enc, current)
    sim = _simulate_nir(graph, current.numpy())
    for name in ("nerve", "cortex1", "cortex2"):
        assert ours[name].sum() > 20, f"{name} barely fires: the comparison would be weak"
        assert np.array_equal(ours[name].numpy(), sim[name]), name
    # the readout: NIR's LI gives the membrane potentials, sparse sums their softmax
    summed = torch.softmax(torch.as_tensor(sim["readout"]), dim=-1).sum(1)
    torch.testing.assert_close(ours["readout"], summed, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- round trips


def test_round_trip_through_a_file_gives_identical_spikes(tmp_path):
    torch.manual_seed(0)
    net = MultilayeredSpiking(20, [24, 16, 10], sfa_portions=0.0, rnn_portions=[0.5, 0.0, 0.3],
                              ff_portions=[0.7, 1.0, 1.0], normalization="none", dt=1.0).eval()
    path, _ = write_nir(net, tmp_path / "stack.nir")
    back = from_nir(nir.read(path))
    assert back.names == ["layer1", "layer2", "layer3"]
    assert back.layers[0].neurons.V is not None and back.layers[1].neurons.V is None
    x = _spike_input(3, 300, 20, seed=2)
    lengths = torch.tensor([300, 211, 97])
    with torch.no_grad():
        _, spikes = net(x, lengths, return_all_spikes=True)
        _, again = back(x, lengths, return_all=True)
    for i, (a, b) in enumerate(zip(spikes, again.values(), strict=True)):
        assert a.sum() > 50, f"layer {i + 1} barely fires"
        assert torch.equal(a, b), f"layer {i + 1}: {int((a != b).sum())} spikes differ"
    # the decay factors came back bit for bit, though only tau in seconds was stored
    for orig, new in zip(net.layers, back.layers, strict=True):
        assert torch.equal(orig.neurons.coefficients()[0], new.neurons.coefficients()[0])


def test_batchnorm_folds_into_the_affine_map_exactly(tmp_path):
    torch.manual_seed(1)
    layer = SpikingFCLayer(12, 9, sfa_portion=0.0, rnn_portion=0.4, ff_portion=0.8,
                           normalization="batchnorm", dt=2.0).double()
    _randomise_norms(layer, seed=4)
    layer.eval()
    core = spiking_core(layer)
    projection = core.stages[0]
    assert isinstance(projection, Projection) and projection.folded == "batchnorm"
    x = _spike_input(4, 50, 12, seed=5, dtype=torch.float64)
    with torch.no_grad():
        bn = layer.norm
        # the layer's bias is folded into its running mean (sparse/snn.py, _norm_spec): in
        # eval mode it computes BatchNorm(W x + bias) with the stored statistics
        assert layer.linear.bias is not None and layer.linear.bias.abs().max() > 0
        current = torch.nn.functional.linear(x, layer.linear.weight * layer.feedforward_mask,
                                             layer.linear.bias)
        normalised = bn(current.reshape(-1, 9)).reshape(4, 50, 9)
    folded = x.numpy() @ projection.weight.T + projection.bias
    np.testing.assert_allclose(folded, normalised.numpy(), rtol=0, atol=1e-12)

    back = from_nir(nir.read(write_nir(layer, tmp_path / "bn.nir")[0]))
    assert back.layers[0].norm is None and back.layers[0].linear.weight.dtype == torch.float64
    x = _spike_input(2, 400, 12, seed=6, dtype=torch.float64)
    with torch.no_grad():
        a, b = layer(x), back(x)
    assert a.sum() > 50 and torch.equal(a, b)


def test_checkpoint_export_command_writes_a_graph_that_reproduces_the_model(tmp_path):
    ckpt = _checkpoint(tmp_path / "kws.pt", "kws", "model.normalization=none")
    out = tmp_path / "exports" / "kws.nir"
    r = subprocess.run([sys.executable, "-m", "sparse.cli", "export", str(ckpt), "--format", "nir",
                        str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout and "outside the graph: the convolutional front end" \
        in r.stdout
    graph = nir.read(out)
    assert float(graph.metadata["dt_ms"]) == 10.0 and float(graph.metadata["dt"]) == 0.01
    assert graph.metadata["source"].startswith("sparse ")
    assert isinstance(graph.nodes["cortex1"], nir.NIRGraph)  # recurrent: a subgraph
    assert isinstance(graph.nodes["readout"], nir.LI)

    encoder = restore_run(ckpt).model.encoder
    back = from_nir(graph)
    assert back.names == ["nerve", "cortex1", "cortex2", "readout"]
    current = _current(3, 120, encoder.front.nerve_size, seed=7)
    lengths = torch.tensor([120, 80, 33])
    ours = _core_outputs(encoder, current, lengths)
    with torch.no_grad():
        _, theirs = back(current, lengths, return_all=True)
    for name in ("nerve", "cortex1", "cortex2"):
        assert ours[name].sum() > 20, name
        assert torch.equal(ours[name], theirs[name]), name
    # the readout's batch normalisation was folded: equal up to float32 rounding
    torch.testing.assert_close(theirs["readout"], ours["readout"], rtol=1e-5, atol=1e-5)


def test_asr_checkpoint_exports_up_to_the_last_population(tmp_path):
    from sparse.export.checkpoint import export_checkpoint

    ckpt = _checkpoint(tmp_path / "asr.pt", "asr")
    path, core = export_checkpoint(ckpt, tmp_path / "asr.nir")
    graph = nir.read(path)
    assert list(graph.nodes["output"].output_type["output"]) == [12]
    assert [s.name for s in core.stages][-1] == "cortex2"
    assert "pooling" in graph.metadata["outside"] and "phone classifier" in \
        graph.metadata["outside"]
    assert all(s.folded == "batchnorm" for s in core.stages if isinstance(s, Projection))


# ----------------------------------------------------------------------------- refusals


def _run_export(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = (f"import sys\n{prelude}\nfrom sparse.cli import main\n"
            f"sys.exit(main(['export', *{list(args)!r}]))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def _one_paragraph(stderr: str) -> str:
    assert "Traceback" not in stderr
    text = stderr.strip()
    assert text.startswith("sparse export: error:") and "\n\n" not in text
    return text


def test_adaptive_populations_are_refused_by_name(tmp_path):
    ckpt = _checkpoint(tmp_path / "adlif.pt", "kws", "model.cortex_sfa_portions=[0.0,0.5]")
    out = tmp_path / "adlif.nir"
    r = _run_export(str(ckpt), str(out))
    assert r.returncode == 2
    text = _one_paragraph(r.stderr)
    assert "'cortex2'" in text and "6 adaptive (AdLIF) neurons of 12" in text
    assert "'cortex1'" not in text and "cortex_sfa_portions" in text
    assert not out.exists() and list(tmp_path.iterdir()) == [ckpt]  # no partial file either


def test_layer_normalisation_is_refused_by_name():
    stack = MultilayeredSpiking(8, [6, 5], sfa_portions=0.0, normalization="layernorm")
    with pytest.raises(ExportError) as err:
        spiking_core(stack)
    text = str(err.value)
    assert "'layer1' (layers.0.norm) is layer-normalised" in text and "'layer2'" in text
    assert "batch normalisation with running statistics" in text


def test_missing_nir_package_is_one_paragraph(tmp_path):
    ckpt = _checkpoint(tmp_path / "kws.pt", "kws")
    out = tmp_path / "kws.nir"
    r = _run_export(str(ckpt), str(out), prelude="sys.modules['nir'] = None")
    assert r.returncode == 2
    text = _one_paragraph(r.stderr)
    assert "'nir' package" in text and "pip install 'nir>=1.0.6,<1.1'" in text
    assert not out.exists()


def test_bad_checkpoint_and_output_paths_are_one_paragraph(tmp_path, capsys):
    from sparse.cli import main

    ckpt = _checkpoint(tmp_path / "kws.pt", "kws")
    for args, expected in [((str(tmp_path / "missing.pt"), str(tmp_path / "x.nir")), "not found"),
                           ((str(ckpt), str(tmp_path)), "is a folder"),
                           ((str(ckpt), str(ckpt)), "the checkpoint itself")]:
        assert main(["export", *args]) == 2
        assert expected in _one_paragraph(capsys.readouterr().err)
    assert restore_run(ckpt).classes and sorted(p.name for p in tmp_path.iterdir()) == ["kws.pt"]


# ----------------------------------------------------------------------------- import checks


def _lif_graph(**changes) -> nir.NIRGraph:
    n, dt = 3, 0.001
    alpha = np.array([0.9, 0.8, 0.7])
    params = dict(tau=dt / (1 - alpha), r=1 / (1 - alpha), v_leak=np.zeros(n),
                  v_threshold=np.ones(n), v_reset=np.zeros(n))
    params.update(changes)
    return nir.NIRGraph.from_list(nir.Affine(weight=np.eye(n), bias=np.zeros(n)),
                                  nir.LIF(**params))


def test_import_rebuilds_a_foreign_lif_chain_and_refuses_what_sparse_cannot_run():
    graph = _lif_graph()
    net = from_nir(graph, dt_ms=1.0)
    alpha = net.layers[0].neurons.coefficients()[0]
    torch.testing.assert_close(alpha, torch.tensor([0.9, 0.8, 0.7], dtype=torch.float64))
    with pytest.raises(NIRError, match="no time step"):
        from_nir(graph)
    with pytest.raises(NIRError, match=r"node 'lif': v_threshold must be 1 .* from 1 to 2"):
        from_nir(_lif_graph(v_threshold=np.array([1.0, 2.0, 1.0])), dt_ms=1.0)
    with pytest.raises(NIRError, match=r"node 'lif': r dt / tau must be 1"):
        from_nir(_lif_graph(r=np.ones(3)), dt_ms=1.0)
    conv = nir.NIRGraph.from_list(
        nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3)), stride=1, padding=0, dilation=1,
                   groups=1, bias=np.zeros(2)))
    with pytest.raises(NIRError, match="is a Conv1d"):
        from_nir(conv, dt_ms=1.0)


def test_imported_network_step_is_dt_ms_and_former_dt_warns():
    from sparse.export.nir import NIRNetwork

    net = from_nir(_lif_graph(), dt_ms=1.0)
    assert isinstance(net, NIRNetwork) and net.dt_ms == 1.0
    with pytest.warns(DeprecationWarning, match=r"NIRNetwork\.dt is deprecated; use "
                                                r"NIRNetwork\.dt_ms"):
        assert net.dt == 1.0
    with pytest.warns(FutureWarning, match=r"NIRNetwork\(dt=\.\.\.\) is deprecated; use "
                                           r"NIRNetwork\(dt_ms=\.\.\.\)"):
        former = NIRNetwork(net.names, list(net.layers), dt=1.0)
    assert former.dt_ms == 1.0 and former.names == net.names


def test_export_refuses_a_module_without_a_spiking_core():
    with pytest.raises(ExportError, match="has no spiking core"):
        to_nir(torch.nn.Linear(3, 2))
