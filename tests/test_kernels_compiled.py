"""The compiled time loop: which loop runs, the fallback without a compiler, the spike-sparse
products against dense torch, and the inference cache.

The compiled loop's values and gradients are held to the oracle in ``test_snn_oracle.py``
(every fast loop over the whole grid); this module covers the machinery around it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from sparse.kernels import compiled, extension
from sparse.kernels.dispatch import check_implementation, resolve_implementation
from sparse.snn import MultilayeredSpiking, SpikingFCLayer, SpikingNeurons

from .helpers import compiler_present, use_loop


def test_default_runs_the_compiled_loop_where_a_compiler_is_present():
    torch.manual_seed(0)
    net = MultilayeredSpiking(12, [10, 8], sfa_portions=0.5, rnn_portions=0.5)
    assert net.layers[0].implementation == "auto"
    out = net((torch.rand(2, 30, 12) > 0.7).float())
    out.sum().backward()
    ran = {layer.neurons.last_implementation for layer in net.layers}
    if compiler_present():
        assert extension.extension() is not None, extension.build_error()
    # a build cached earlier loads without a compiler: then it must run too
    assert ran == ({"compiled"} if extension.extension() is not None else {"torch"})


def test_without_a_compiler_the_torch_loop_runs_after_one_warning(tmp_path):
    """A fresh cache and a compiler that always fails (``CXX=/bin/false``): one warning line
    that says how to get the fast loop, then the torch loop, with the oracle's spikes."""
    script = textwrap.dedent("""
        import json, warnings
        import torch
        from sparse.snn import MultilayeredSpiking, set_implementation
        warnings.simplefilter("always")
        torch.manual_seed(0)
        net = MultilayeredSpiking(12, [10, 8], sfa_portions=0.5, rnn_portions=0.5).double()
        x = (torch.rand(2, 40, 12) > 0.7).double()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = net(x)
            out.sum().backward()
            net(x)
        ran = sorted({layer.neurons.last_implementation for layer in net.layers})
        set_implementation(net, "reference")
        same = torch.equal(net(x), out)
        messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
        print(json.dumps({"ran": ran, "same": same, "warnings": messages}))
    """)
    env = dict(os.environ, CXX="/bin/false", SPARSE_EXTENSIONS_DIR=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ran"] == ["torch"]
    assert result["same"]
    assert len(result["warnings"]) == 1, result["warnings"]
    message = result["warnings"][0]
    assert "compiled time loop could not be built" in message
    assert "install a C++ compiler" in message and "python -m sparse.kernels.build" in message


@pytest.mark.skipif(not compiler_present(), reason="no C++ compiler on this machine")
def test_a_build_lock_left_by_a_killed_process_does_not_block_later_ones(tmp_path):
    """PyTorch's extension tools guard a build with a plain 'lock' file; a process killed
    while building leaves it, and without the project's own lock every later process would
    wait for it forever (even when the library is built: the tools take it at each load)."""
    import shutil

    assert extension.extension() is not None, extension.build_error()
    cache = tmp_path / "cache"
    shutil.copytree(extension.build_dir(), cache / extension.build_dir().name)
    stale = cache / extension.build_dir().name / "lock"
    stale.write_text("")
    script = ("from sparse.kernels import extension; "
              "print(extension.extension() is not None, extension.build_error())")
    env = dict(os.environ, SPARSE_EXTENSIONS_DIR=str(cache), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "True", proc.stdout + proc.stderr
    assert not stale.exists()


def test_explicit_compiled_names_the_reason_when_it_cannot_run(monkeypatch):
    monkeypatch.setattr(extension, "_tried", True)
    monkeypatch.setattr(extension, "_module", None)
    monkeypatch.setattr(extension, "_error", "no compiler here")
    assert resolve_implementation("auto", torch.device("cpu")) == "torch"
    pop = SpikingNeurons(5, implementation="compiled")
    with pytest.raises(RuntimeError, match="no compiler here"):
        pop(torch.rand(1, 4, 5))


def test_cuda_tensors_run_the_torch_loop():
    assert resolve_implementation("auto", torch.device("cuda")) == "torch"
    assert resolve_implementation("torch", torch.device("cuda")) == "torch"
    with pytest.raises(RuntimeError, match="CPU only"):
        resolve_implementation("compiled", torch.device("cuda"))


def test_implementation_names():
    for name in ("auto", "compiled", "torch", "reference"):
        assert check_implementation(name) == name
    with pytest.warns(DeprecationWarning, match="'fused' is deprecated"):
        assert check_implementation("fused") == "auto"
    with pytest.raises(ValueError, match="implementation must be one of"):
        check_implementation("fast")


# ----------------------------------------------------------------------------- spike products


@pytest.fixture
def ext(monkeypatch):
    use_loop("compiled-sparse", monkeypatch)
    return extension.extension()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("density", [0.0, 0.03, 0.5, 1.0])
@pytest.mark.parametrize("scale", [1.0, 1 / 0.85])
def test_spike_products_equal_dense_products(ext, dtype, density, scale):
    gen = torch.Generator().manual_seed(int(density * 100) + 7)
    x = torch.rand(37, 6, 70, generator=gen) < density  # (time, batch, inputs)
    weight = torch.randn(45, 70, generator=gen, dtype=dtype)
    grad = torch.randn(37, 6, 45, generator=gen, dtype=dtype)
    dense_x = x.to(dtype) * scale
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {}
    out = compiled.spike_linear(x, weight, scale)
    assert out.shape == (37, 6, 45) and out.dtype == dtype
    torch.testing.assert_close(out, torch.nn.functional.linear(dense_x, weight), **tol)
    grad_weight = compiled.spike_outer(x, grad, scale)
    assert grad_weight.shape == (45, 70)
    expected = grad.reshape(-1, 45).T @ dense_x.reshape(-1, 70)
    torch.testing.assert_close(grad_weight, expected, **tol)


def test_spike_stats_tells_spike_trains_and_counts_them(ext):
    x = torch.zeros(3, 100_003)
    x[0, ::7] = 1.0
    binary, ones = ext.spike_stats(x)
    assert binary == 1 and ones == len(range(0, 100_003, 7))
    x[2, 99_999] = 0.5
    assert ext.spike_stats(x)[0] == 0
    x[2, 99_999] = -1.0
    assert ext.spike_stats(x)[0] == 0
    assert ext.spike_stats(torch.ones(10, dtype=torch.float64)) == [1, 10]


def test_the_density_switch_picks_the_products(ext, monkeypatch):
    """Below the density limit the layer multiplies from active indices, above it densely."""
    calls = []
    real = compiled.spike_linear
    monkeypatch.setattr("sparse.kernels.projection.spike_linear",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(compiled, "SPIKE_PRODUCT_MAX_DENSITY", 0.2)
    layer = SpikingFCLayer(50, 20, rnn_portion=0.5)
    sparse_x = (torch.rand(2, 40, 50) < 0.05).float()
    dense_x = (torch.rand(2, 40, 50) < 0.6).float()
    layer(sparse_x)
    assert len(calls) == 1
    layer(dense_x)
    assert len(calls) == 1
    layer(dense_x * 0.5)  # not a spike train
    assert len(calls) == 1


# ----------------------------------------------------------------------------- inference


def test_inference_cache_is_reused_and_follows_every_change():
    torch.manual_seed(3)
    net = MultilayeredSpiking(10, [12], sfa_portions=0.5, rnn_portions=0.5,
                              ff_portions=1.0).eval()
    layer = net.layers[0]
    x = (torch.rand(1, 25, 10) > 0.6).float()
    with torch.no_grad():
        first = layer.neurons._loop_coefficients()
        assert layer.neurons._loop_coefficients() is first  # reused between chunks
        weight = layer._masked_weight()
        assert layer._masked_weight() is weight
        before = net(x)
    # an optimiser step changes the parameters in place: the cache must follow
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    net.train()
    net(x).sum().backward()
    optimizer.step()
    net.eval()
    with torch.no_grad():
        assert layer.neurons._loop_coefficients() is not first
        assert layer._masked_weight() is not weight
        after = net(x)
        with torch.enable_grad():
            expected = net(x)  # computed without the cache
    assert torch.equal(after, expected.detach())
    assert not torch.equal(before, after) or before.sum() == 0
    # load_state_dict copies in place, .double() replaces the tensors
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["layers.0.neurons.V"].mul_(-1)
    net.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(layer.neurons._loop_coefficients()[4],
                           layer.neurons.coefficients()[4])
        net.double()
        assert layer._masked_weight().dtype == torch.float64



@pytest.mark.parametrize("p", [0.0, 0.15, 0.5, 0.9])
def test_dropout_masks_keep_each_entry_independently_with_one_minus_p(p):
    """Three entries of each mask come from 16-bit quarters of a random word and one from its
    15-bit top quarter: every position keeps 1 - p of its entries (within 5 standard errors),
    and neighbours are uncorrelated."""
    from sparse.kernels.projection import dropout_keep_mask

    gen = torch.Generator().manual_seed(11)
    mask = dropout_keep_mask((4000, 101), p, torch.device("cpu"), generator=gen)
    assert mask.shape == (4000, 101) and mask.dtype == torch.bool
    flat = mask.reshape(-1)[: 4 * (mask.numel() // 4)].float().view(-1, 4)
    n = flat.shape[0]
    bound = 5 * (max(p * (1 - p), 1e-12) / n) ** 0.5 + 1e-12
    for position in range(4):  # each quarter of the random words
        assert abs(flat[:, position].mean().item() - (1 - p)) <= bound
    if 0 < p < 1:
        a, b = mask.reshape(-1)[:-1].float(), mask.reshape(-1)[1:].float()
        corr = ((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std())
        assert abs(corr.item()) < 0.01
    again = dropout_keep_mask((4000, 101), p, torch.device("cpu"),
                              generator=torch.Generator().manual_seed(11))
    assert torch.equal(mask, again)  # seeded: reproducible
