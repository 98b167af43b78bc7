"""Training configuration: YAML files with every field documented and validated.

A config is a tree of dataclasses (:class:`TrainConfig` and its sections). Every field carries
its documentation in its metadata, so ``sparse train --help-config`` and ``docs/training.md``
list the same thing the code checks. Loading is strict:

* an unknown key is an error that names it (with the closest known key as a hint);
* a value of the wrong type is an error that names the key, the expected type and the value
  (an integer field refuses ``3.5`` rather than truncating it);
* a key given twice in one section is an error naming it and both lines;
* every value is checked against the table of constraints in :mod:`sparse.train.validate`
  (ranges, lengths, relations between fields) before anything else happens, and every broken
  rule is reported as ``key: value: why``;
* ``--set section.key=value`` overrides a field; the value is parsed as YAML
  (``--set optim.lr=3e-4``, ``--set model.cortex_layer_sizes=[128,128]``).

Example::

    cfg = load_config("configs/kws_synth.yaml", overrides=["train.epochs=2"])
    cfg.to_dict()    # the resolved config, plain Python types (what the run folder records)
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .augment import AugmentConfig
from .tasks import TASKS

__all__ = [
    "ConfigError",
    "DataConfig",
    "FeatureConfig",
    "ModelConfig",
    "NeuronSection",
    "OptimConfig",
    "RegularizerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainingConfig",
    "apply_overrides",
    "config_from_dict",
    "describe_config",
    "load_config",
    "parse_yaml",
    "read_config_file",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and the source."""


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with a default (copied if mutable) and its documentation."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class DataConfig:
    """Where the utterances come from."""

    corpus: str = _f(
        "synth",
        "'synth' for the synthesised default corpus (built on first use, then cached), or the "
        "path of a corpus folder: a Speech Commands folder for task 'kws', a TIMIT-layout "
        "folder (with train/ and test/) for task 'asr', a folder of SHD/SSC files "
        "({shd,ssc}_<split>.h5) for task 'spikes' ('synth': the synthesised keywords as "
        "spikes). A relative path is relative to the current directory.",
    )
    corpus_format: str | None = _f(
        None,
        "the format of the corpus folder, a name in sparse.train.corpora.CORPUS_FORMATS "
        "('speech_commands' for task 'kws', 'timit' for 'asr', 'shd' for 'spikes', and any "
        "format registered there); null: the task's own. The synthesised corpus is always in "
        "the task's own format.",
    )
    synth_preset: Literal["default", "small", "tiny"] = _f(
        "default", "size preset of the synthesised corpus ('tiny' builds in seconds, for tests; "
        "'small': the same sentences and 16 keyword speakers)"
    )
    synth_dir: str | None = _f(
        None,
        "folder of the synthesised corpus; null: $SPARSE_DATA_DIR or ~/.cache/sparse, "
        "/synth-<hash of its options>",
    )
    synth_seed: int = _f(0, "seed of the synthesised corpus (independent of the training seed)")
    kws_task: Literal["all", "12"] = _f(
        "all", "task 'kws': 'all' = every word folder is a class (35 words), '12' = 10 words + "
        "_unknown_ + _silence_",
    )
    phone_set: Literal[39, 48, 61] = _f(39, "task 'asr': phone classes of the CTC targets")
    train_split: str = _f("train", "split used for training")
    valid_split: str = _f("valid", "split used for model selection and annealing")
    test_split: str = _f("test", "split evaluated at the end of training (held-out speakers)")
    limit_train: int | None = _f(
        None, "use only the first N training utterances (quick runs, tests); null: all"
    )
    limit_eval: int | None = _f(
        None, "use only the first N validation/test utterances; null: all"
    )
    on_error: Literal["raise", "skip"] = _f(
        "raise", "an unreadable audio file (or one whose features are not finite): 'raise' "
        "stops with its name, 'skip' drops it with a warning that names it",
    )
    feature_cache: bool = _f(
        True,
        "compute the features of every utterance once and keep them in a cache file "
        "($SPARSE_DATA_DIR/features/features-<hash>.pt), reused by later runs with the same "
        "front end, file list, labels, on_error and file contents (see cache_check)",
    )
    cache_check: Literal["stat", "hash"] = _f(
        "stat",
        "how the feature cache tells that an audio file changed: 'stat' = its size and "
        "modification time (one stat per file); 'hash' = its size and a hash of its bytes "
        "(reads the whole corpus on every run; catches an edit that kept the size and the "
        "time)",
    )


@dataclass
class FeatureConfig:
    """The log-mel front end (:class:`sparse.features.LogMelFilterbank`). Its hop is the SNN's
    time step: the encoders run with ``dt = hop_ms``."""

    n_mels: int = _f(40, "mel channels (the encoder's num_mel_bins)")
    hop_ms: float = _f(
        10.0, "frame hop in ms = the SNN time step dt (task 'spikes': the width of the bins "
        "the spike times are counted in; the other features fields do not apply to it)")
    win_ms: float = _f(25.0, "analysis window in ms")
    sample_rate: int = _f(16000, "audio is resampled to this rate (Hz)")
    standardization: Literal["global", "utterance", "none"] = _f(
        "global",
        "scaling of the features to zero mean and unit variance (formerly "
        "'features.normalization'); "
        "'global': per-channel mean/std over the training frames (stored in the checkpoint); "
        "'utterance': per utterance and channel; 'none'",
    )


@dataclass
class ModelConfig:
    """The encoder (:class:`sparse.encoder_kws.KWSEncoder` or
    :class:`sparse.encoder_asr.ASREncoder`); names are the constructor arguments."""

    auditory_channels: list[int] = _f([16], "channels of each conv block (1 or 2 blocks)")
    auditory_kernel_size: list[int] = _f([7, 7], "conv kernel (time, frequency)")
    auditory_frequency_stride: list[int] = _f([1], "frequency stride of each conv block")
    cortex_layer_sizes: list[int] = _f([256, 256], "neurons of each cortex layer")
    cortex_sfa_portions: list[float] = _f(
        [0.5, 0.5], "share of adaptive (AdLIF) neurons in each cortex layer"
    )
    cortex_rnn_portions: list[float] = _f(
        [0.5, 0.5], "share of kept recurrent connections in each cortex layer (0: none)"
    )
    cortex_feedforward_portions: list[float] = _f(
        [1.0, 1.0], "share of kept feed-forward connections in each cortex layer"
    )
    dropout: float = _f(0.1, "dropout on each layer's input (and in the ASR head)")
    normalization: Literal["batchnorm", "layernorm", "none"] = _f(
        "batchnorm", "normalisation of each spiking layer's input current"
    )
    phoneme_num_layers: int = _f(2, "task 'asr': layers of the MLP head")
    phoneme_features: int = _f(512, "task 'asr': width of the MLP head")
    phoneme_ctc_rate_hz: float = _f(
        25.0, "task 'asr': output frame rate of the CTC head (1000 / hop_ms / rate must be whole)"
    )
    phoneme_layernorm: bool = _f(
        False, "task 'asr': a LayerNorm after each linear map of the MLP head (not in the "
        "original SPARSE code)")
    auditory_dropout: float | None = _f(
        None, "dropout of the front end: whole frequency bins of the conv output, then the "
        "auditory nerve's input current; null: 'dropout', as in the original SPARSE code")
    recurrent_init: Literal["linear", "orthogonal"] = _f(
        "linear", "initial recurrent weights before masking: 'linear' (the original SPARSE "
        "code's: uniform in +-1/sqrt(N), as torch.nn.Linear) or 'orthogonal'")
    readout_tau_steps: list[float] = _f(
        [5.0, 25.0], "task 'kws': range of the readout's time constant in steps (its range in "
        "ms is hop_ms times this); [5, 25] is the original SPARSE code's per-step decay range "
        "[e^(-1/5), e^(-1/25)]")
    readout_dropout: float = _f(
        0.0, "task 'kws': dropout on the readout's input (the original SPARSE code has none)")
    batchnorm_momentum: float = _f(
        0.05, "momentum of the BatchNorm running statistics of the spiking layers and the "
        "readout (the original SPARSE code's 0.05; torch's default is 0.1); they set the "
        "normalisation in evaluation, not the gradients")


@dataclass
class NeuronSection:
    """The spiking neurons of the nerve and the cortex (:class:`sparse.neuron.NeuronConfig`,
    plus the lateral modes); the names are the encoders' constructor arguments, the defaults
    theirs (the original SPARSE code's)."""

    tau_u_range: list[float] = _f(
        [3.0, 25.0], "range [low, high] of the membrane time constants tau_u in ms: drawn in "
        "it, kept in it during training")
    tau_w_range: list[float] = _f(
        [30.0, 350.0], "range [low, high] of the adaptation time constants tau_w in ms")
    a_range: list[float] = _f(
        [-0.5, 5.0], "range [low, high] of the adaptation coupling a (no unit; a is also kept "
        "below the bound where the neuron would oscillate)")
    b_range: list[float] = _f(
        [0.0, 2.0], "range [low, high] of the spike-triggered adaptation b (in units of the "
        "threshold)")
    normal_init: bool = _f(
        False, "draw tau_u, tau_w, a, b from a normal distribution centred on each range (a "
        "third of its half-width as standard deviation, clipped to the range) instead of "
        "uniformly over the range")
    threshold: float = _f(1.0, "firing threshold of the membrane potential")
    surrogate: str = _f("boxcar", "surrogate spike derivative (see sparse.surrogate)")
    surrogate_scale: float | None = _f(
        None, "width of the surrogate derivative; null: the surrogate's own (boxcar 1, "
        "fast_sigmoid 10, arctan 2, triangle 1, gaussian 0.5)")
    implementation: str = _f(
        "auto", "time loop of the spiking layers: 'auto' (the compiled loop on the CPU where "
        "it builds, else 'torch'), 'compiled', 'torch' or 'reference' (step by step, plain "
        "autograd: slow, for checks)")
    auditory_lateral: bool = _f(
        True, "recurrence of the auditory nerve between neighbouring fibres only (it has "
        "none in this trainer's models: its share of recurrent connections is 0)")
    cortex_lateral: bool | list[bool] = _f(
        False, "recurrence of each cortex layer between neighbouring neurons only, instead of "
        "random connections: one value for all layers or one per layer")


#: Keys moved from ``model`` to ``neuron``; the old key still works for a while, with a warning.
MOVED_TO_NEURON = ("surrogate",)

#: Keys renamed within their section, ``(section, former name, name)``; the former name still
#: works for a while, with a warning (``model.normalization`` is the spiking layers' own).
RENAMED_KEYS = (("features", "normalization", "standardization"),)


@dataclass
class OptimConfig:
    """Adam."""

    lr: float = _f(1e-3, "initial learning rate")
    betas: list[float] = _f([0.9, 0.999], "Adam's betas")
    weight_decay: float = _f(0.0, "L2 weight decay (Adam's, not decoupled)")
    grad_clip: float | None = _f(
        5.0, "clip the global gradient norm to this (a positive number); null: no clipping")


@dataclass
class ScheduleConfig:
    """Learning-rate annealing: decided once per epoch on the validation loss ('newbob',
    'plateau'), or a fixed function of the training step ('cosine')."""

    kind: Literal["newbob", "plateau", "cosine", "constant"] = _f(
        "newbob",
        "'newbob': multiply the lr by 'factor' when the relative improvement of the validation "
        "loss is below 'threshold' (SpeechBrain's NewBob); 'plateau': multiply it by 'factor' "
        "after 'patience' epochs without an improvement above 'threshold'; 'cosine': after "
        "'warmup_steps' of linear warm-up, follow half a cosine from the lr down to 'min_lr' "
        "at the last step of the last epoch (suits short, fixed budgets); 'constant'",
    )
    factor: float = _f(0.5, "lr multiplier when annealing")
    threshold: float = _f(0.0025, "relative improvement that counts as one")
    patience: int = _f(0, "epochs without improvement tolerated before annealing")
    min_lr: float = _f(1e-6, "the lr is never annealed below this")
    warmup_steps: int = _f(
        0, "'cosine': steps of linear warm-up from 0 to the lr (at most a fifth of the run's "
        "steps, so that a short run is not all warm-up)")


@dataclass
class RegularizerConfig:
    """Firing-rate regulariser ``weight * (mean relu(r_min - r) + mean relu(r - r_max))`` over
    the neurons of every population, ``r`` the rate of each neuron in Hz over the batch's
    valid frames."""

    weight: float = _f(0.5, "weight of the penalty (0: off)")
    r_min_hz: float = _f(0.5, "neurons firing below this rate (Hz) are pushed up")
    r_max_hz: float = _f(250.0, "neurons firing above this rate (Hz) are pushed down")
    populations: Literal["all", "cortex"] = _f(
        "all", "'all': auditory nerve and cortex; 'cortex': the cortex layers only"
    )


@dataclass
class TrainingConfig:
    """The loop."""

    epochs: int = _f(10, "passes over the training set")
    batch_size: int = _f(16, "utterances per batch (per process under torchrun)")
    sort_by_length: bool = _f(
        True, "batch utterances of similar length together (shuffled batch order each epoch)"
    )
    checkpoint_every: int = _f(
        0, "also write the 'last' checkpoint every N steps inside an epoch (0: at epoch ends "
        "only); a killed run resumes from it exactly",
    )
    device: str = _f("cpu", "'cpu', 'cuda' or 'cuda:N'")
    num_threads: int | None = _f(
        None, "CPU threads of each training process; null: the cores this process may use, "
        "shared among the processes torchrun starts on the node, at most 16 (see "
        "'Speed: the time loop and threads' in docs/training.md)")
    progress: bool = _f(True, "show a progress bar (rank 0 only)")
    tensorboard: bool = _f(False, "also write TensorBoard event files (needs 'tensorboard')")
    evaluate_test: bool = _f(True, "evaluate the best checkpoint on the test split at the end")


@dataclass
class TrainConfig:
    """A training run (``sparse train CONFIG.yaml``)."""

    task: Literal[tuple(TASKS)] = _f(  # type: ignore[valid-type]
        "kws", "; ".join(f"'{name}': {task.description}" for name, task in TASKS.items()),
    )
    seed: int = _f(0, "fixes masks, initialisation, dropout and data order")
    name: str = _f("run", "run name: the run folder is runs/<name>-<time> unless --out is given")
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": DataConfig.__doc__})
    features: FeatureConfig = field(
        default_factory=FeatureConfig, metadata={"doc": FeatureConfig.__doc__})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"doc": ModelConfig.__doc__})
    neuron: NeuronSection = field(
        default_factory=NeuronSection, metadata={"doc": NeuronSection.__doc__})
    optim: OptimConfig = field(default_factory=OptimConfig, metadata={"doc": OptimConfig.__doc__})
    schedule: ScheduleConfig = field(
        default_factory=ScheduleConfig, metadata={"doc": ScheduleConfig.__doc__})
    regularizer: RegularizerConfig = field(
        default_factory=RegularizerConfig, metadata={"doc": RegularizerConfig.__doc__})
    train: TrainingConfig = field(
        default_factory=TrainingConfig, metadata={"doc": TrainingConfig.__doc__})
    augment: AugmentConfig = field(
        default_factory=AugmentConfig, metadata={"doc": AugmentConfig.__doc__})

    def to_dict(self) -> dict[str, Any]:
        """The config as plain dicts, lists and scalars (YAML/JSON-safe)."""
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check every value against the table of constraints
        (:data:`sparse.train.validate.CONSTRAINTS`; types are checked on construction).

        Raises:
            ConfigError: ``key: value: why`` for every value that breaks a rule.
        """
        from .validate import problems

        found = problems(self)
        if len(found) == 1:
            raise ConfigError(found[0])
        if found:
            raise ConfigError(f"{len(found)} invalid values: " + "; ".join(found))


# ------------------------------------------------------------------------------ type checking


_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (arg,) = typing.get_args(tp)
        return f"a list of {_type_name(arg)}"
    if tp is type(None):
        return "null"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to floats)."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed and not (isinstance(value, bool) and True not in allowed):
            return value
        # YAML reads 12 as an int where a Literal of strings wants "12"
        if isinstance(value, int) and str(value) in allowed:
            return str(value)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, key, source)
            except ConfigError:
                continue
    elif origin is list:
        (arg,) = typing.get_args(tp)
        if isinstance(value, (list, tuple)):
            return [_coerce(v, arg, f"{key}[{i}]", source) for i, v in enumerate(value)]
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads 1e-3 (no dot) as a string
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this module does not handle
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(
        f"{source}: config key '{key}' must be {_type_name(tp)}, got {value!r} "
        f"({type(value).__name__})"
    )


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            known = ", ".join(fields)
            raise ConfigError(
                f"{source}: unknown config key '{prefix}{key}'{hint} "
                f"(known keys{' in ' + repr(prefix.rstrip('.')) if prefix else ''}: {known})"
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{prefix}{key}.", source)
        else:
            kwargs[key] = _coerce(value, tp, f"{prefix}{key}", source)
    return cls(**kwargs)


def with_former_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """A config stored by a version before the model took the original SPARSE code's
    defaults, completed with the values that version used (in place; returned).

    Such a config lacks ``model.recurrent_init`` (and the other keys added with it); without
    this, its checkpoint would be rebuilt with the new defaults and not load, or load into a
    different model. A config stored before the ``neuron`` section gets its keys of
    :data:`MOVED_TO_NEURON` moved there from ``model`` (without the warning a user's own
    config gets); the section's defaults are the neuron options those versions used. A key
    of :data:`RENAMED_KEYS` under its former name is renamed, also without a warning.
    """
    for section, former, key in RENAMED_KEYS:
        # written under the former name (quietly renamed: the user did not write this config)
        node = data.get(section)
        if isinstance(node, dict) and former in node:
            node.setdefault(key, node.pop(former))
    model = data.get("model")
    if isinstance(model, dict) and isinstance(data.get("neuron", {}), dict):
        # written before the 'neuron' section: its keys were in 'model' (quietly moved: the
        # user did not write this config)
        neuron = data.setdefault("neuron", {})
        for key in MOVED_TO_NEURON:
            if key in model:
                neuron.setdefault(key, model.pop(key))
    if not isinstance(model, dict) or "recurrent_init" in model:
        return data
    features = data.get("features") if isinstance(data.get("features"), dict) else {}
    hop_ms = features.get("hop_ms", FeatureConfig().hop_ms)
    dropout = model.get("dropout", ModelConfig().dropout)
    former = {
        "phoneme_layernorm": True,
        "auditory_dropout": 0.0,
        "recurrent_init": "orthogonal",
        "readout_tau_steps": [3.0 / hop_ms, 25.0 / hop_ms],  # then 3-25 ms whatever the step
        "readout_dropout": dropout,
        "batchnorm_momentum": 0.1,
    }
    for key, value in former.items():
        model.setdefault(key, value)
    return data


def _moved_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with the keys of :data:`MOVED_TO_NEURON` given in ``model`` moved to
    ``neuron`` (a copy where anything moves), each with a ``FutureWarning`` naming the new
    key; the same key given in both places with different values is an error."""
    model, neuron = data.get("model"), data.get("neuron")
    if not isinstance(model, dict) or not any(key in model for key in MOVED_TO_NEURON):
        return data
    if neuron is not None and not isinstance(neuron, dict):
        return data  # _build reports the section that is not a mapping
    data, model, neuron = dict(data), dict(model), dict(neuron or {})
    for key in MOVED_TO_NEURON:
        if key not in model:
            continue
        value = model.pop(key)
        if key in neuron and neuron[key] != value:
            raise ConfigError(
                f"{source}: 'model.{key}' ({value!r}) and 'neuron.{key}' ({neuron[key]!r}) "
                f"disagree; 'model.{key}' is the former name of 'neuron.{key}': give only "
                f"'neuron.{key}'"
            )
        neuron[key] = value
        warnings.warn(f"{source}: config key 'model.{key}' is deprecated and will be removed "
                      f"in the next release; write it as 'neuron.{key}'", FutureWarning,
                      stacklevel=3)
    data["model"], data["neuron"] = model, neuron
    return data


def _renamed_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with the former names of :data:`RENAMED_KEYS` replaced by the new ones (a
    copy where anything is renamed), each with a ``FutureWarning`` naming the new key; a
    section that gives both names is an error naming both."""
    for section, former, key in RENAMED_KEYS:
        node = data.get(section)
        if not isinstance(node, dict) or former not in node:
            continue
        if key in node:
            raise ConfigError(
                f"{source}: both '{section}.{former}' and '{section}.{key}' are given; "
                f"'{section}.{former}' is the former name of '{section}.{key}': give only "
                f"'{section}.{key}'"
            )
        node = {(key if name == former else name): value for name, value in node.items()}
        data = {**data, section: node}
        warnings.warn(f"{source}: config key '{section}.{former}' is deprecated and will be "
                      f"removed in the next release; write it as '{section}.{key}'",
                      FutureWarning, stacklevel=3)
    return data


def config_from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from nested dicts (missing keys: defaults).
    A key of :data:`MOVED_TO_NEURON` in ``model`` is read as ``neuron``'s, and a former name
    of :data:`RENAMED_KEYS` as the new one, with a warning."""
    cfg = _build(TrainConfig, _renamed_keys(_moved_keys(data, source), source), "", source)
    try:
        cfg.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cfg


def _set_path(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: '{dotted}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def _duplicate_keys(node: Any, path: str = "") -> list[str]:
    """Keys that appear twice in one mapping of a composed YAML tree, as
    ``'key' on lines A and B`` (YAML itself would keep the last silently)."""
    import yaml

    found: list[str] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if name is not None and name != "<<":
                dotted = f"{path}{name}"
                if name in first_line:
                    found.append(f"'{dotted}' on lines {first_line[name]} and {line}")
                else:
                    first_line[name] = line
            found += _duplicate_keys(value_node, f"{path}{name}." if name is not None else path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found += _duplicate_keys(item, path)
    return found


def _yaml_error(exc: Exception) -> str:
    """A YAML parser error on one line: where and what."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def parse_yaml(text: str, source: str) -> Any:
    """Parse ``text`` as YAML (safe types only) and refuse a key given twice in one mapping.

    Raises:
        ConfigError: not valid YAML, or a duplicate key (named with both lines).
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({_yaml_error(exc)})") from None
    duplicates = _duplicate_keys(node)
    if duplicates:
        raise ConfigError(
            f"{source}: {'; '.join(duplicates)}: a key may appear only once in a section "
            "(YAML would keep the last value and silently drop the other)"
        )
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to nested dicts, in place."""
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.lr=3e-4"
            )
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set {item!r}: empty key")
        value = parse_yaml(raw, f"--set {item!r}") if raw.strip() else ""
        _set_path(data, key, value, f"--set {item}")
    return data


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The nested dicts of a YAML config file (an empty file: no keys).

    Raises:
        ConfigError: the file is missing, a folder, not UTF-8 text, not valid YAML, holds a
            key twice in one section, or is not a mapping.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {p} is a folder; give the YAML file")
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line} cannot be "
            "decoded); save the config as UTF-8"
        ) from None
    loaded = parse_yaml(text, str(p))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{p}: a config is a mapping of sections, got {type(loaded).__name__}")
    return loaded


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config (or start from the defaults when ``path`` is None), apply
    ``overrides`` and validate.

    Raises:
        ConfigError: missing or unparsable file, unknown key, wrong type, bad value; the
            message names the file (or the override) and the key.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        data = read_config_file(path)
    if overrides:
        apply_overrides(data, overrides)
        source = f"{source} with --set {' '.join(overrides)}"
    return config_from_dict(data, source)


def describe_config(cls: type = TrainConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(key, type, default, doc)`` for every field, sections flattened with dots."""
    rows = []
    hints = typing.get_type_hints(cls)
    default = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.append((f"{prefix}{f.name}", "section", "", f.metadata.get("doc", "") or ""))
            rows.extend(describe_config(tp, f"{prefix}{f.name}."))
        else:
            value = getattr(default, f.name)
            rows.append((f"{prefix}{f.name}", _type_name(tp), repr(value),
                         f.metadata.get("doc", "")))
    return rows
