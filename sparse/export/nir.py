"""NIR (Neuromorphic Intermediate Representation) export and import.

NIR describes neurons in continuous time; sparse's run in steps of ``dt``. The export writes
each node so that NIR's equation, integrated with forward Euler at ``dt`` (the convention of
the frameworks that read and write NIR), gives sparse's update exactly (derivations:
``docs/export.md``). Times are in seconds.

============================  ===============================================================
sparse                        NIR
============================  ===============================================================
masked linear map (+ folded   ``Affine(W, b)``, or ``Linear(W)`` without a bias
batch normalisation)
LIF population, decay         ``LIF(tau = dt / (1 - alpha), r = 1 / (1 - alpha), v_leak = 0,
``alpha = exp(-dt / tau_u)``  v_threshold = 1, v_reset = 0)``; Euler: ``v_t = alpha v_(t-1) +
                              I_t``; reset by subtracting ``v_threshold - v_reset``
recurrent ``V``               subgraph ``input -> lif -> output`` with ``lif -> recurrent
                              (Linear V) -> lif``, the spikes of the previous step
KWS leaky readout             ``LI(tau = dt / (1 - alpha), r = 1, v_leak = 0)``; Euler:
                              ``v_t = alpha v_(t-1) + (1 - alpha) I_t``
============================  ===============================================================

Each LIF and LI node's metadata holds ``tau_exact = -dt / ln(alpha)`` (= ``tau_u``), the time
constant for a reader that integrates the leak exactly instead (``r`` is the same for both);
the graph's metadata holds ``dt`` (s), ``dt_ms``, the discretisation, the reset rule, what
the graph's input is and what of the model stays outside.

:func:`from_nir` reads such a graph back into sparse's own layers (:class:`NIRNetwork`):
``LIF`` nodes (alone or in the recurrent subgraph above) become LIF populations, an ``Affine``
or ``Linear`` before one becomes its layer's input map, a final ``LI`` the readout. Decay
factors come back bit for bit, so a model exported and re-imported gives identical spikes.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..atomic import replacing
from ..deprecation import renamed_attribute, renamed_keywords
from ..snn import ReadoutLayer, SpikingFCLayer, SpikingNeurons
from .core import (
    ExportError,
    LeakyReadout,
    LIFPopulation,
    Projection,
    SpikingCore,
    spiking_core,
)

__all__ = ["NIR_REQUIREMENT", "NIRError", "NIRNetwork", "from_nir", "read_nir", "require_nir",
           "time_constants", "to_nir", "write_nir"]

#: the versions of the ``nir`` package this module is written for (``v_reset`` came in 1.0.6)
NIR_REQUIREMENT = "nir>=1.0.6,<1.1"

DISCRETISATION = ("forward Euler at dt: v_t = v_(t-1) + (dt / tau) (v_leak - v_(t-1) + r I_t); "
                  "each LIF and LI node's metadata also gives tau_exact, the time constant for "
                  "an exact (exponential) integration of the leak with the same r")
RESET = ("by subtraction: when v_t > v_threshold the neuron spikes and v_t is lowered by "
         "v_threshold - v_reset, keeping what exceeded the threshold (in continuous time, "
         "where v never exceeds the threshold, this is NIR's reset to v_reset)")
RECURRENCE = ("the recurrent edge (lif -> recurrent -> lif) carries the spikes of the "
              "previous step")


class NIRError(ExportError):
    """A NIR file or graph that cannot be read, or not rebuilt as sparse's layers; the
    message names the node and the field."""


def require_nir() -> ModuleType:
    """The ``nir`` package; an :class:`ExportError` saying how to install it when it is
    missing or older than :data:`NIR_REQUIREMENT`."""
    try:
        nir = importlib.import_module("nir")
    except ImportError:
        raise ExportError(
            f"NIR export and import need the 'nir' package, which is not installed for "
            f"{sys.executable}: install it with pip install '{NIR_REQUIREMENT}' (or, in a "
            "checkout of sparse, its 'nir' extra: pip install '.[nir]')"
        ) from None
    if "v_reset" not in getattr(nir.LIF, "__dataclass_fields__", {}):
        raise ExportError(
            f"the installed nir {getattr(nir, '__version__', '(unknown version)')} is too old: "
            f"its LIF node has no v_reset; install {NIR_REQUIREMENT} (pip install "
            f"'{NIR_REQUIREMENT}')"
        )
    return nir


# ----------------------------------------------------------------------------- export


def _lif_node(nir: ModuleType, stage: LIFPopulation, dt_s: float):
    decay_gap = 1.0 - stage.alpha  # 1 - alpha, exact in float64 for a float32 alpha
    zeros, ones = np.zeros_like(stage.alpha), np.ones_like(stage.alpha)
    lif = nir.LIF(tau=dt_s / decay_gap, r=1.0 / decay_gap, v_leak=zeros, v_threshold=ones,
                  v_reset=zeros,
                  metadata={"tau_exact": -dt_s / np.log(stage.alpha), "module": stage.module})
    if stage.recurrent is None:
        return lif
    n = np.array([stage.size])
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type=n), "lif": lif,
               "recurrent": nir.Linear(weight=stage.recurrent),
               "output": nir.Output(output_type=n)},
        edges=[("input", "lif"), ("lif", "recurrent"), ("recurrent", "lif"), ("lif", "output")],
        metadata={"recurrence": RECURRENCE},
    )


def _li_node(nir: ModuleType, stage: LeakyReadout, dt_s: float):
    return nir.LI(tau=dt_s / (1.0 - stage.alpha), r=np.ones_like(stage.alpha),
                  v_leak=np.zeros_like(stage.alpha),
                  metadata={"tau_exact": -dt_s / np.log(stage.alpha), "module": stage.module})


def to_nir(model: nn.Module | SpikingCore):
    """The NIR graph (``nir.NIRGraph``) of ``model``'s spiking core (see
    :func:`~sparse.export.core.spiking_core` for the models it takes).

    Nodes: ``input``; per population ``<name>_affine`` or ``<name>_linear`` (its input map)
    and ``<name>`` (a ``LIF``, a recurrent subgraph, or the readout's ``LI``); ``output``.

    Raises:
        ExportError: the model has parts with no exact NIR form (named), or ``nir`` is missing.
    """
    from .. import __version__

    nir = require_nir()
    core = model if isinstance(model, SpikingCore) else spiking_core(model)
    dt_s = core.dt_ms / 1000.0
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array([core.input_size]))}
    edges: list[tuple[str, str]] = []
    previous = "input"
    for stage in core.stages:
        if isinstance(stage, Projection):
            if stage.bias is None:
                key, node = f"{stage.name}_linear", nir.Linear(weight=stage.weight)
            else:
                key = f"{stage.name}_affine"
                node = nir.Affine(weight=stage.weight, bias=stage.bias)
        elif isinstance(stage, LIFPopulation):
            key, node = stage.name, _lif_node(nir, stage, dt_s)
        else:
            key, node = stage.name, _li_node(nir, stage, dt_s)
        nodes[key] = node
        edges.append((previous, key))
        previous = key
    nodes["output"] = nir.Output(output_type=np.array([core.output_size]))
    edges.append((previous, "output"))
    metadata = {
        "source": f"sparse {__version__}", "dt": dt_s, "dt_ms": core.dt_ms, "time_unit": "s",
        "discretisation": DISCRETISATION, "reset": RESET, "input": core.input,
        "outside": "; ".join(core.outside) if core.outside else "nothing",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def write_nir(model: nn.Module | SpikingCore, path: str | Path, label: str | None = None
              ) -> tuple[Path, SpikingCore]:
    """Write ``model``'s spiking core to ``path`` (HDF5, NIR's file format), atomically: a
    temporary file in the same folder renamed over ``path``. Returns the path and the core;
    ``label`` names the model in error messages.

    Raises:
        ExportError: as :func:`to_nir`; OSError: the file cannot be written.
    """
    nir = require_nir()
    core = model if isinstance(model, SpikingCore) else spiking_core(model, label)
    graph = to_nir(core)
    path = Path(path)
    with replacing(path) as tmp:
        nir.write(str(tmp), graph)
    return path, core


# ----------------------------------------------------------------------------- import


def read_nir(path: str | Path):
    """``nir.read`` with its failures turned into a :class:`NIRError` naming the file."""
    nir = require_nir()
    path = Path(path)
    if not path.is_file():
        raise NIRError(f"NIR file {path} not found")
    try:
        return nir.read(path)
    except Exception as exc:  # h5py, nir's own checks: any failure means "not a NIR graph"
        raise NIRError(f"{path} is not a NIR graph that the nir package can read "
                       f"({type(exc).__name__}: {str(exc)[:300]})") from None


class NIRNetwork(nn.Module):
    """sparse's own layers rebuilt from a NIR graph, run one after the other.

    ``layers`` holds :class:`~sparse.snn.SpikingNeurons` (a LIF node with no input map),
    :class:`~sparse.snn.SpikingFCLayer` (an input map and a LIF node, recurrent or not) and a
    final :class:`~sparse.snn.ReadoutLayer` (an input map and an LI node); ``names`` their
    node names; ``dt_ms`` the step in ms.

    Shapes:
        ``forward(x (batch, time, in), lengths)`` returns the last layer's output: spikes
        ``(batch, time, N)``, or for a readout its softmax summed over time ``(batch, out)``
        as :class:`~sparse.snn.ReadoutLayer` gives it. With ``return_all`` a tuple
        ``(output, {name: output of that layer})``.
    """

    @renamed_keywords(dt="dt_ms")
    def __init__(self, names: list[str], layers: list[nn.Module], dt_ms: float) -> None:
        super().__init__()
        self.names = list(names)
        self.layers = nn.ModuleList(layers)
        self.dt_ms = float(dt_ms)

    dt = renamed_attribute("dt", "dt_ms")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                return_all: bool = False):
        outputs: dict[str, torch.Tensor] = {}
        for name, layer in zip(self.names, self.layers, strict=True):
            x = layer(x, lengths)
            outputs[name] = x
        return (x, outputs) if return_all else x


def _field(key: str, node: Any, name: str) -> np.ndarray:
    value = np.asarray(getattr(node, name), dtype=np.float64)
    if value.ndim != 1:
        raise NIRError(f"node '{key}': {name} has shape {value.shape}; sparse rebuilds "
                       "populations of one dimension (a vector per parameter)")
    return value


def _require(key: str, node: Any, name: str, expected: float, why: str) -> None:
    value = _field(key, node, name)
    if np.any(value != expected):
        raise NIRError(f"node '{key}': {name} must be {expected:g} for every neuron ({why}), "
                       f"got values from {value.min():g} to {value.max():g}")


def _decay(key: str, node: Any, dt_s: float, gain_one: str) -> np.ndarray:
    """``alpha = 1 - dt / tau`` of a LIF or LI node, after checking its input gain."""
    tau = _field(key, node, "tau")
    r = _field(key, node, "r")
    if not np.all(np.isfinite(tau)) or np.any(tau <= dt_s):
        raise NIRError(f"node '{key}': every tau must exceed the step dt = {dt_s:g} s (the "
                       f"decay 1 - dt / tau must lie between 0 and 1), got tau from "
                       f"{tau.min():g} to {tau.max():g} s")
    gain = r * dt_s / tau if gain_one == "lif" else r
    if not np.allclose(gain, 1.0, rtol=1e-9, atol=0.0):
        what = ("r dt / tau must be 1: sparse's LIF adds its input current to the potential "
                "unscaled" if gain_one == "lif" else
                "r must be 1: sparse's readout integrates (1 - alpha) times its input")
        raise NIRError(f"node '{key}': {what}; got {gain.min():g} to {gain.max():g} (scale "
                       "the weights of the map before the node instead)")
    return 1.0 - dt_s / tau


def _lif_decay(key: str, node: Any, dt_s: float) -> np.ndarray:
    _require(key, node, "v_leak", 0.0, "sparse's neurons leak towards 0")
    _require(key, node, "v_threshold", 1.0, "sparse's neurons fire above 1")
    if getattr(node, "v_reset", None) is not None:
        _require(key, node, "v_reset", 0.0, "sparse's neurons subtract the threshold, 1")
    return _decay(key, node, dt_s, "lif")


def _li_decay(key: str, node: Any, dt_s: float) -> np.ndarray:
    _require(key, node, "v_leak", 0.0, "sparse's readout leaks towards 0")
    return _decay(key, node, dt_s, "li")


def time_constants(alpha: np.ndarray, dt_ms: float, dtype: torch.dtype) -> torch.Tensor:
    """``tau_u`` (ms, ``dtype``) such that ``exp(-dt / tau_u)``, computed as the layers compute
    it, equals ``alpha`` rounded to ``dtype``: ``-dt / ln(alpha)`` then, where rounding lands
    one value off, the neighbouring representable ``tau_u`` (``exp`` grows with ``tau_u``)."""
    target = torch.as_tensor(alpha, dtype=torch.float64).to(dtype)
    tau = torch.as_tensor(-dt_ms / np.log(alpha), dtype=torch.float64).to(dtype)
    for _ in range(64):
        got = torch.exp(-dt_ms / tau)
        off = got != target
        if not bool(off.any()):
            break
        toward = torch.where(got < target, torch.full_like(tau, math.inf), torch.zeros_like(tau))
        tau = torch.where(off, torch.nextafter(tau, toward), tau)
    return tau


def _recurrent_lif(nir: ModuleType, key: str, sub: Any) -> tuple[Any, np.ndarray]:
    """The LIF node and ``V`` of a recurrent subgraph as :func:`to_nir` writes it."""
    kinds: dict[str, list[str]] = {}
    for k, n in sub.nodes.items():
        kinds.setdefault(type(n).__name__, []).append(k)
    shape_ok = (len(sub.nodes) == 4 and len(kinds.get("Input", [])) == 1
                and len(kinds.get("Output", [])) == 1 and len(kinds.get("LIF", [])) == 1
                and len(kinds.get("Linear", [])) + len(kinds.get("Affine", [])) == 1)
    if shape_ok:
        inp, out, lif = kinds["Input"][0], kinds["Output"][0], kinds["LIF"][0]
        rec = (kinds.get("Linear") or kinds.get("Affine"))[0]
        expected = {(inp, lif), (lif, rec), (rec, lif), (lif, out)}
        shape_ok = {(a, b) for a, b in sub.edges} == expected
    if not shape_ok:
        raise NIRError(
            f"subgraph '{key}' is not a recurrent LIF population (input -> LIF -> output with "
            "LIF -> Linear -> LIF); its nodes: "
            + ", ".join(f"{k} ({type(n).__name__})" for k, n in sub.nodes.items()))
    weight_node = sub.nodes[rec]
    if isinstance(weight_node, nir.Affine) and np.any(np.asarray(weight_node.bias) != 0):
        raise NIRError(f"subgraph '{key}': the recurrent map '{rec}' has a bias; sparse's "
                       "recurrence is V s_(t-1) alone")
    return sub.nodes[lif], np.asarray(weight_node.weight)


def _chain(nir: ModuleType, graph: Any) -> list[tuple[str, Any]]:
    """The nodes from the graph's one Input to its one Output, each feeding the next."""
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"the graph has {len(inputs)} input and {len(outputs)} output nodes; "
                       "sparse rebuilds a chain with one of each")
    successors: dict[str, list[str]] = {}
    predecessors: dict[str, int] = {}
    for a, b in graph.edges:
        successors.setdefault(a, []).append(b)
        predecessors[b] = predecessors.get(b, 0) + 1
    chain: list[tuple[str, Any]] = []
    key, seen = inputs[0], {inputs[0]}
    while True:
        following = successors.get(key, [])
        if len(following) != 1:
            raise NIRError(f"node '{key}' feeds {len(following)} nodes {following}; sparse "
                           "rebuilds a chain in which each node feeds the next")
        key = following[0]
        if key in seen or predecessors.get(key, 0) != 1:
            raise NIRError(f"node '{key}' has {predecessors.get(key, 0)} incoming edges or "
                           "closes a loop outside a recurrent subgraph; sparse rebuilds a chain")
        seen.add(key)
        if key == outputs[0]:
            break
        chain.append((key, graph.nodes[key]))
    stray = sorted(set(graph.nodes) - seen)
    if stray:
        raise NIRError(f"nodes {stray} are not on the path from input to output")
    return chain


def _graph_dt(graph: Any, dt_ms: float | None) -> tuple[float, float]:
    """``(dt in ms, dt in s)``: the argument, else the graph's ``dt_ms``/``dt`` metadata."""
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt_ms is None:
        if "dt_ms" in meta:
            dt_ms = float(meta["dt_ms"])
        elif "dt" in meta:
            dt_ms = float(meta["dt"]) * 1000.0
        else:
            raise NIRError("the graph's metadata gives no time step (dt): pass dt_ms, the step "
                           "in ms at which its nodes are to be integrated")
        if "dt" in meta:
            return dt_ms, float(meta["dt"])
    if not (math.isfinite(dt_ms) and dt_ms > 0):
        raise NIRError(f"the time step must be a positive number of ms, got {dt_ms}")
    return float(dt_ms), float(dt_ms) / 1000.0


def from_nir(source: Any, dt_ms: float | None = None, dtype: torch.dtype | None = None
             ) -> NIRNetwork:
    """Rebuild sparse's layers from a NIR graph (a ``nir.NIRGraph`` or a file path).

    Args:
        source: the graph or its file.
        dt_ms: the step in ms; default: the graph's metadata (``dt_ms``, else ``dt`` in s).
        dtype: of the rebuilt layers; default: that of the first weight matrix (float32
            when there is none).

    Returns:
        A :class:`NIRNetwork` in eval mode.

    Raises:
        NIRError: the graph is not a chain of the nodes listed in the module docstring, or a
            node's parameters are not those of sparse's neurons (threshold 1, reset by
            subtraction to 0, no leak potential, unit input gain); the message names it.
    """
    nir = require_nir()
    graph = source if isinstance(source, nir.NIRGraph) else read_nir(source)
    dt_ms, dt_s = _graph_dt(graph, dt_ms)
    chain = _chain(nir, graph)
    if dtype is None:
        weights = [np.asarray(n.weight) for _, n in chain if isinstance(n, (nir.Affine,
                                                                            nir.Linear))]
        dtype = torch.float64 if weights and weights[0].dtype == np.float64 else torch.float32
    names: list[str] = []
    layers: list[nn.Module] = []
    pending: tuple[str, np.ndarray, np.ndarray | None] | None = None
    # building layers draws initial weights and masks (then overwritten): keep the caller's
    # random stream as it was
    with torch.random.fork_rng(devices=[]):
        for position, (key, node) in enumerate(chain):
            if isinstance(node, (nir.Affine, nir.Linear)):
                if pending is not None:
                    raise NIRError(f"node '{key}' follows the map '{pending[0]}' directly; "
                                   "sparse rebuilds one input map per population")
                bias = np.asarray(node.bias) if isinstance(node, nir.Affine) else None
                pending = (key, np.asarray(node.weight), bias)
                continue
            if isinstance(node, nir.NIRGraph):
                lif, recurrent = _recurrent_lif(nir, key, node)
                layers.append(_population(key, lif, recurrent, pending, dt_ms, dt_s, dtype))
            elif isinstance(node, nir.LIF):
                layers.append(_population(key, node, None, pending, dt_ms, dt_s, dtype))
            elif isinstance(node, nir.LI):
                if position != len(chain) - 1:
                    raise NIRError(f"the LI node '{key}' is not the last node; sparse's leaky "
                                   "readout ends the network")
                layers.append(_readout(key, node, pending, dt_ms, dt_s, dtype))
            else:
                raise NIRError(
                    f"node '{key}' is a {type(node).__name__}; sparse rebuilds Affine, Linear, "
                    "LIF (alone or in a recurrent subgraph with a Linear map) and a final LI")
            names.append(key)
            pending = None
    if pending is not None:
        raise NIRError(f"the map '{pending[0]}' feeds no population; sparse rebuilds maps "
                       "only as the input of a population")
    if not layers:
        raise NIRError("the graph holds no population (LIF or LI node)")
    return NIRNetwork(names, layers, dt_ms).eval()


def _check_map(key: str, pending: tuple[str, np.ndarray, np.ndarray | None], size: int) -> None:
    name, weight, bias = pending
    if weight.ndim != 2 or weight.shape[0] != size or (bias is not None
                                                       and bias.shape != (size,)):
        raise NIRError(f"the map '{name}' (weight {weight.shape}) does not fit node '{key}' "
                       f"of {size} neurons")


@torch.no_grad()
def _population(key: str, lif: Any, recurrent: np.ndarray | None,
                pending: tuple[str, np.ndarray, np.ndarray | None] | None, dt_ms: float,
                dt_s: float, dtype: torch.dtype) -> nn.Module:
    alpha = _lif_decay(key, lif, dt_s)
    n = alpha.shape[0]
    tau = time_constants(alpha, dt_ms, dtype)
    kwargs = dict(sfa_portion=0.0, rnn_portion=0.0 if recurrent is None else 1.0, dt=dt_ms,
                  tau_u_range=(float(tau.min()), float(tau.max())))
    if recurrent is not None and recurrent.shape != (n, n):
        raise NIRError(f"node '{key}': the recurrent weight has shape {recurrent.shape}, not "
                       f"({n}, {n})")
    if pending is None:
        module: nn.Module = SpikingNeurons(n, **kwargs).to(dtype)
        neurons = module
    else:
        _check_map(key, pending, n)
        _, weight, bias = pending
        module = SpikingFCLayer(weight.shape[1], n, ff_portion=1.0, normalization="none",
                                bias=bias is not None, **kwargs).to(dtype)
        module.linear.weight.copy_(torch.as_tensor(weight))
        if bias is not None:
            module.linear.bias.copy_(torch.as_tensor(bias))
        neurons = module.neurons
    neurons.tau_u.copy_(tau)
    if recurrent is not None:
        neurons.recurrent_mask.copy_(torch.as_tensor(recurrent != 0))
        neurons.V.copy_(torch.as_tensor(recurrent))
    return module


@torch.no_grad()
def _readout(key: str, li: Any, pending: tuple[str, np.ndarray, np.ndarray | None] | None,
             dt_ms: float, dt_s: float, dtype: torch.dtype) -> ReadoutLayer:
    alpha = _li_decay(key, li, dt_s)
    if pending is None:
        raise NIRError(f"the LI node '{key}' has no Affine or Linear map before it; sparse's "
                       "readout has one")
    _check_map(key, pending, alpha.shape[0])
    _, weight, bias = pending
    tau = time_constants(alpha, dt_ms, dtype)
    readout = ReadoutLayer(weight.shape[1], alpha.shape[0], dt=dt_ms, normalization="none",
                           tau_u_range=(float(tau.min()), float(tau.max())),
                           bias=bias is not None).to(dtype)
    readout.linear.weight.copy_(torch.as_tensor(weight))
    if bias is not None:
        readout.linear.bias.copy_(torch.as_tensor(bias))
    readout.tau_u.copy_(tau)
    return readout
