"""Every constraint on a config value, as one table, checked when a config loads.

The types of the fields are checked by :mod:`sparse.train.config` while it builds the config
(an integer must be an integer: ``3.5`` is refused, never truncated). This module holds what the
types cannot say: the ranges, lengths and relations that the encoders, the front end, the
optimiser, the schedulers and the run folder need (read off their constructors), so that a bad
value stops the command before any data is loaded, with one line per value::

    model.cortex_sfa_portions[0]: 1.5: must be in [0, 1] (a share of the layer's neurons)

:data:`CONSTRAINTS` is the table; :func:`problems` applies it, :func:`allowed` renders it for
``sparse train --help-config`` and ``docs/training.md``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .corpora import CORPUS_FORMATS, formats_for
from .tasks import TASKS

__all__ = ["CONSTRAINTS", "Constraint", "allowed", "device_problem", "problems",
           "show_value", "split_problem"]

#: A predicate on the value of a key (or one entry of a list) and the whole config.
Check = Callable[[Any, Any], bool]
#: Extra detail for the message: the value and the whole config -> text (or "").
Detail = Callable[[Any, Any], str]


@dataclass(frozen=True)
class Constraint:
    """One row of the table.

    Attributes:
        key: the dotted config key.
        ok: ``ok(value, cfg)`` is true when the value is allowed.
        rule: what is allowed, as the message and the docs say it ("must be at least 1").
        each: check every entry of a list on its own (the message names ``key[i]``, the
            docs say "each entry ...").
        when: the rule applies only to configs where ``when(cfg)`` is true (e.g. task 'asr').
        needs: keys that must have passed their own checks first (relations between fields).
        detail: optional ``detail(value, cfg)`` appended to the message in parentheses.
    """

    key: str
    ok: Check
    rule: str
    each: bool = False
    when: Callable[[Any], bool] | None = None
    needs: tuple[str, ...] = ()
    detail: Detail | None = None


# ---------------------------------------------------------------------------- rule builders


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _at_least(n: int) -> Check:
    return lambda v, c: v >= n


def _positive(v: Any, c: Any) -> bool:
    return _finite(v) and v > 0


def _non_negative(v: Any, c: Any) -> bool:
    return _finite(v) and v >= 0


def _share(v: Any, c: Any) -> bool:
    return _finite(v) and 0 <= v <= 1


def _below_one(v: Any, c: Any) -> bool:
    return _finite(v) and 0 <= v < 1


def _optional(check: Check) -> Check:
    return lambda v, c: v is None or check(v, c)


def _length(n: int) -> Check:
    return lambda v, c: len(v) == n


def _as_long_as(other: str) -> Check:
    return lambda v, c: len(v) == len(value_of(c, other))


def _lengths_differ(other: str) -> Detail:
    return lambda v, c: f"it has {len(v)}, {other} has {len(value_of(c, other))}"


_SEED_MAX = 2**32 - 1
_NAME_MAX = 200


def _folder_name(v: str, c: Any) -> bool:
    """A name that stays one folder inside runs/: no separators, not '.' or '..'."""
    return (0 < len(v.encode("utf-8", "surrogatepass")) <= _NAME_MAX and "/" not in v
            and "\\" not in v and v not in (".", "..") and v.isprintable())


def _not_empty(v: str, c: Any) -> bool:
    return bool(v.strip())


_DEVICE_RE = re.compile(r"cpu|cuda(:\d+)?")


def device_problem(device: str, need_available: bool = False) -> str | None:
    """Why ``device`` cannot be used (``None``: it can): not 'cpu', 'cuda' or 'cuda:N', or,
    with ``need_available``, a CUDA device this machine does not have."""
    if not isinstance(device, str) or not _DEVICE_RE.fullmatch(device):
        return "must be 'cpu', 'cuda' or 'cuda:N' (N: the number of a CUDA device)"
    if need_available and device.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if count == 0:
            return "this machine has no CUDA device that torch can use; use 'cpu'"
        if index >= count:
            return (f"this machine has {count} CUDA device(s), numbered 0 to {count - 1}")
    return None


#: The split names the corpus readers know, by task (the TIMIT layout also has 'dev' and the
#: full test set 'test_full').
SPLITS = {name: task.splits for name, task in TASKS.items()}


def split_problem(split: str, task: str) -> str | None:
    """Why ``split`` is not a split of a ``task`` corpus (``None``: it is one)."""
    if split in SPLITS[task]:
        return None
    return f"must be one of {', '.join(repr(s) for s in SPLITS[task])} for task '{task}'"


def _split_ok(v: str, c: Any) -> bool:
    return split_problem(v, c.task) is None


def _format_ok(v: str | None, c: Any) -> bool:
    if v is None:
        return True
    known = v in CORPUS_FORMATS and CORPUS_FORMATS[v].task == c.task
    # the synthesised corpus is written in each task's own format only
    return known and (c.data.corpus != "synth" or v == formats_for(c.task)[0])


def _format_detail(v: str | None, c: Any) -> str:
    own = formats_for(c.task)
    if v in own and c.data.corpus == "synth":
        return f"data.corpus 'synth' is in the task's own format {own[0]!r}"
    return f"task '{c.task}' reads " + ", ".join(repr(n) for n in own)


def _surrogate_ok(v: str, c: Any) -> bool:
    return v in _surrogate_names()


def _surrogate_names() -> list[str]:
    from ..surrogate import SURROGATES

    return sorted(SURROGATES)


def _whole_samples(v: float, c: Any) -> bool:
    exact = v * c.features.sample_rate / 1000.0
    return round(exact) >= 1 and abs(exact - round(exact)) <= 1e-6 * max(1.0, exact)


def _samples_detail(v: float, c: Any) -> str:
    sr = c.features.sample_rate
    exact = v * sr / 1000.0
    options = sorted({max(1, math.floor(exact)), max(1, math.ceil(exact))})
    near = " or ".join(f"{n * 1000.0 / sr:g} ms" for n in options)
    return f"{exact:g} samples at {sr} Hz; e.g. {near}"


def _pool_steps(v: float, c: Any) -> float:
    return 1000.0 / c.features.hop_ms / v


def _whole_pool(v: float, c: Any) -> bool:
    k = _pool_steps(v, c)
    return round(k) >= 1 and abs(k - round(k)) <= 1e-9


def _pool_detail(v: float, c: Any) -> str:
    frame_rate = 1000.0 / c.features.hop_ms
    divisors = [frame_rate / k for k in range(1, 11) if frame_rate % k == 0][:4]
    rates = ", ".join(f"{r:g}" for r in divisors)
    return (f"the frame rate is {frame_rate:g} Hz (features.hop_ms = {c.features.hop_ms:g}), "
            f"so a pooling window would be {_pool_steps(v, c):g} steps; e.g. {rates} Hz")


def _freq_bins(c: Any) -> list[int]:
    """Frequency bins entering each conv block (``n_mels``, then what each stride leaves)."""
    m = c.model
    bins, freq = [], c.features.n_mels
    kernel_freq = m.auditory_kernel_size[1]
    for stride in m.auditory_frequency_stride:
        bins.append(freq)
        freq = (freq - kernel_freq) // stride + 1 if freq >= kernel_freq else 0
    return bins


def _kernel_fits(v: list[int], c: Any) -> bool:
    return all(v[1] <= b for b in _freq_bins(c))


def _kernel_detail(v: list[int], c: Any) -> str:
    return f"the conv blocks receive {', '.join(map(str, _freq_bins(c)))} bins"


def _uses_ctc_rate(c: Any) -> bool:
    return TASKS[c.task].uses_ctc_rate


def _finite_above(low: float | None) -> Check:
    """A finite number, above ``low`` when given."""
    return lambda v, c: _finite(v) and (low is None or v > low)


#: The neuron ranges: key, what each end must be, the bound its ends must exceed.
_NEURON_RANGES = (
    ("tau_u_range", "positive number of ms", 0.0),
    ("tau_w_range", "positive number of ms", 0.0),
    ("a_range", "finite number", None),
    ("b_range", "finite number", None),
)
#: The time loops of the spiking layers (sparse.kernels.dispatch.IMPLEMENTATIONS).
_IMPLEMENTATIONS = ("auto", "compiled", "torch", "reference")

_PORTIONS = ("cortex_sfa_portions", "cortex_rnn_portions", "cortex_feedforward_portions")
_WHAT = {"cortex_sfa_portions": "adaptive neurons", "cortex_rnn_portions":
         "kept recurrent connections", "cortex_feedforward_portions":
         "kept feed-forward connections"}

def _ordered(v: list[Any], c: Any) -> bool:
    return v is None or v[0] <= v[1]


def _pair(key: str, what: str, entry: Constraint) -> tuple[Constraint, ...]:
    """The rules of a ``[low, high]`` range: two entries, each ``entry``, low not above high."""
    return (
        Constraint(key, lambda v, c: v is None or len(v) == 2, f"must have 2 entries [low, "
                   f"high] ({what})"),
        dataclasses.replace(entry, key=key, needs=(key,)),
        Constraint(key, _ordered, "its low entry must not be above its high one",
                   needs=(key,)),
    )


#: The ``augment`` section (see :mod:`sparse.train.augment`).
_AUGMENT: tuple[Constraint, ...] = (
    *_pair("augment.snr_db", "dB",
           Constraint("", lambda v, c: v is None or all(_finite(x) for x in v),
                      "each entry must be a finite number of dB")),
    Constraint("augment.noise_dir", _optional(_not_empty), "must be null or a folder"),
    Constraint("augment.speeds", lambda v, c: len(v) >= 1,
               "must list at least one speed ([100]: no speed change)"),
    Constraint("augment.speeds", lambda v, c: 50 <= v <= 200,
               "must be from 50 to 200 (percent)", each=True),
    *_pair("augment.drop_freq_count", "bands",
           Constraint("", lambda v, c: all(x >= 0 for x in v), "each entry must be 0 or more")),
    Constraint("augment.drop_freq_width", lambda v, c: _finite(v) and 0 < v <= 0.5,
               "must be in (0, 0.5] (a share of the Nyquist frequency)"),
    *_pair("augment.drop_chunk_count", "stretches",
           Constraint("", lambda v, c: all(x >= 0 for x in v), "each entry must be 0 or more")),
    *_pair("augment.drop_chunk_ms", "ms",
           Constraint("", lambda v, c: all(_positive(x, c) for x in v),
                      "each entry must be a positive number of ms")),
)

# ------------------------------------------------------------------------------------ table

#: Every constraint beyond the field types, in the order of the config reference.
CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint("seed", lambda v, c: 0 <= v <= _SEED_MAX, f"must be from 0 to {_SEED_MAX}"),
    Constraint("name", _folder_name,
               f"must be a plain folder name (not empty, no slash or backslash, not '.' or "
               f"'..', at most {_NAME_MAX} characters): it names the run folder inside runs/"),
    Constraint("data.corpus", _not_empty, "must not be empty ('synth' or a folder)"),
    Constraint("data.corpus_format", _format_ok,
               "must be null or a corpus format of the task (sparse.train.corpora)",
               detail=_format_detail),
    Constraint("data.synth_dir", _optional(_not_empty), "must be null or a folder"),
    Constraint("data.synth_seed", lambda v, c: 0 <= v <= _SEED_MAX,
               f"must be from 0 to {_SEED_MAX}"),
    *(Constraint(f"data.{s}_split", _split_ok,
                 "must be 'train', 'valid' or 'test' (task 'asr' also: 'dev', 'test_full')")
      for s in ("train", "valid", "test")),
    Constraint("data.limit_train", _optional(_at_least(1)), "must be null or at least 1"),
    Constraint("data.limit_eval", _optional(_at_least(1)), "must be null or at least 1"),
    Constraint("features.n_mels", _at_least(1), "must be at least 1"),
    Constraint("features.sample_rate", _at_least(1), "must be at least 1 Hz"),
    Constraint("features.hop_ms", _positive, "must be a positive number of ms"),
    Constraint("features.hop_ms", _whole_samples,
               "must be a whole number of samples at features.sample_rate",
               needs=("features.hop_ms", "features.sample_rate"), detail=_samples_detail),
    Constraint("features.win_ms", _positive, "must be a positive number of ms"),
    Constraint("features.win_ms", _whole_samples,
               "must be a whole number of samples at features.sample_rate",
               needs=("features.win_ms", "features.sample_rate"), detail=_samples_detail),
    Constraint("model.auditory_channels", lambda v, c: 1 <= len(v) <= 2,
               "must list 1 or 2 conv blocks"),
    Constraint("model.auditory_channels", _at_least(1), "must be at least 1", each=True),
    Constraint("model.auditory_kernel_size", _length(2), "must have 2 entries (time, frequency)"),
    Constraint("model.auditory_kernel_size", _at_least(1), "must be at least 1", each=True),
    Constraint("model.auditory_frequency_stride", _as_long_as("model.auditory_channels"),
               "must have one entry per conv block (as many as model.auditory_channels)",
               needs=("model.auditory_channels",),
               detail=_lengths_differ("model.auditory_channels")),
    Constraint("model.auditory_frequency_stride", _at_least(1), "must be at least 1",
               each=True),
    Constraint("model.auditory_kernel_size", _kernel_fits,
               "its frequency size must not exceed the bins reaching each conv block "
               "(features.n_mels, then what the frequency strides leave)",
               needs=("model.auditory_kernel_size", "model.auditory_frequency_stride",
                      "model.auditory_channels", "features.n_mels"),
               detail=_kernel_detail),
    Constraint("model.cortex_layer_sizes", lambda v, c: len(v) >= 1,
               "must list at least one layer"),
    Constraint("model.cortex_layer_sizes", _at_least(1), "must be at least 1", each=True),
    *(Constraint(f"model.{p}", _as_long_as("model.cortex_layer_sizes"),
                 "must have one entry per cortex layer (as many as model.cortex_layer_sizes)",
                 needs=("model.cortex_layer_sizes",),
                 detail=_lengths_differ("model.cortex_layer_sizes"))
      for p in _PORTIONS),
    *(Constraint(f"model.{p}", _share, f"must be in [0, 1] (a share of {_WHAT[p]})",
                 each=True)
      for p in _PORTIONS),
    Constraint("model.dropout", _below_one, "must be in [0, 1)"),
    Constraint("model.phoneme_num_layers", _at_least(0), "must be at least 0"),
    Constraint("model.phoneme_features", _at_least(1),
               "must be at least 1 (the width of each layer of the head)"),
    Constraint("model.phoneme_ctc_rate_hz", _positive, "must be a positive number of Hz"),
    Constraint("model.phoneme_ctc_rate_hz", _whole_pool,
               "task 'asr': 1000 / features.hop_ms / this rate must be a whole number",
               when=_uses_ctc_rate, needs=("model.phoneme_ctc_rate_hz", "features.hop_ms"),
               detail=_pool_detail),
    Constraint("model.auditory_dropout", _optional(_below_one), "must be null or in [0, 1)"),
    Constraint("model.readout_tau_steps", _length(2), "must have 2 entries (low, high)"),
    Constraint("model.readout_tau_steps", _positive, "must be a positive number of steps",
               each=True),
    Constraint("model.readout_tau_steps", lambda v, c: v[0] <= v[1],
               "its low end must not exceed its high end", needs=("model.readout_tau_steps",)),
    Constraint("model.readout_dropout", _below_one, "must be in [0, 1)"),
    Constraint("model.batchnorm_momentum", lambda v, c: _finite(v) and 0 < v <= 1,
               "must be in (0, 1]"),
    *(c for key, what, low in _NEURON_RANGES for c in (
        Constraint(f"neuron.{key}", _length(2), "must have 2 entries (low, high)"),
        Constraint(f"neuron.{key}", _finite_above(low), f"must be a {what}", each=True,
                   needs=(f"neuron.{key}",)),
        Constraint(f"neuron.{key}", lambda v, c: v[0] <= v[1],
                   "its low end must not exceed its high end", needs=(f"neuron.{key}",)),
    )),
    Constraint("neuron.threshold", _positive, "must be a positive number"),
    Constraint("neuron.surrogate", _surrogate_ok,
               "must be one of 'arctan', 'boxcar', 'fast_sigmoid', 'gaussian', 'triangle'"),
    Constraint("neuron.surrogate_scale", _optional(_positive),
               "must be null (the surrogate's own width) or a positive number"),
    Constraint("neuron.implementation", lambda v, c: v in _IMPLEMENTATIONS,
               "must be one of " + ", ".join(repr(i) for i in _IMPLEMENTATIONS)),
    Constraint("neuron.cortex_lateral",
               lambda v, c: isinstance(v, bool) or len(v) == len(c.model.cortex_layer_sizes),
               "must be true, false or one value per cortex layer (as many as "
               "model.cortex_layer_sizes)", needs=("model.cortex_layer_sizes",),
               detail=lambda v, c: f"it has {len(v)}, model.cortex_layer_sizes has "
               f"{len(c.model.cortex_layer_sizes)}"),
    # Adam with a rate above 10 overflows within a step or two: an error now beats a traceback
    Constraint("optim.lr", lambda v, c: _positive(v, c) and v <= 10,
               "must be a positive number, at most 10"),
    Constraint("optim.betas", _length(2), "must have 2 entries (beta1, beta2)"),
    Constraint("optim.betas", _below_one, "must be in [0, 1)", each=True),
    Constraint("optim.weight_decay", _non_negative, "must be 0 or more"),
    Constraint("optim.grad_clip", _optional(_positive),
               "must be a positive number (null turns clipping off): a norm of zero or below "
               "would zero or reverse the gradients"),
    Constraint("schedule.factor", lambda v, c: _finite(v) and 0 < v <= 1, "must be in (0, 1]"),
    Constraint("schedule.threshold", _below_one, "must be in [0, 1)"),
    Constraint("schedule.patience", _at_least(0), "must be 0 or more"),
    Constraint("schedule.min_lr", _non_negative, "must be 0 or more"),
    Constraint("schedule.warmup_steps", _at_least(0), "must be 0 or more"),
    Constraint("regularizer.weight", _non_negative, "must be 0 or more"),
    Constraint("regularizer.r_min_hz", _non_negative, "must be 0 or more"),
    Constraint("regularizer.r_max_hz", lambda v, c: _finite(v) and v >= c.regularizer.r_min_hz,
               "must be a number not below regularizer.r_min_hz",
               needs=("regularizer.r_min_hz",)),
    Constraint("train.epochs", _at_least(1), "must be at least 1"),
    Constraint("train.batch_size", _at_least(1), "must be at least 1"),
    Constraint("train.checkpoint_every", _at_least(0), "must be 0 or more"),
    Constraint("train.device", lambda v, c: device_problem(v) is None,
               "must be 'cpu', 'cuda' or 'cuda:N'"),
    Constraint("train.num_threads", _optional(_at_least(1)), "must be null or at least 1"),
    *_AUGMENT,
)


# ------------------------------------------------------------------------------- applying


def value_of(cfg: Any, key: str) -> Any:
    """The value of the dotted ``key`` in ``cfg``."""
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def show_value(value: Any) -> str:
    """A value as the user would write it in YAML (``null``, ``true``, ``[0.9]``, ``'gpu'``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return repr(value)


def problems(cfg: Any) -> list[str]:
    """``key: value: why`` for every value of ``cfg`` that breaks a rule of
    :data:`CONSTRAINTS` (empty: the config is valid). A rule whose ``needs`` include a key
    that already broke a rule is skipped, so one mistake gives one message."""
    found: list[str] = []
    broken: set[str] = set()
    for c in CONSTRAINTS:
        if c.when is not None and not c.when(cfg):
            continue
        if any(k in broken for k in c.needs):
            continue
        value = value_of(cfg, c.key)
        items = list(enumerate(value)) if c.each else [(None, value)]
        for i, v in items:
            if c.ok(v, cfg):
                continue
            where = c.key if i is None else f"{c.key}[{i}]"
            detail = f" ({c.detail(v, cfg)})" if c.detail is not None else ""
            found.append(f"{where}: {show_value(v)}: {c.rule}{detail}")
            broken.add(c.key)
    return found


def allowed(key: str) -> str:
    """The rules of ``key`` as one phrase (empty when the type says it all)."""
    rules = []
    for c in CONSTRAINTS:
        if c.key == key:
            rules.append(f"each entry {c.rule}" if c.each else c.rule)
    return "; ".join(rules)
