"""What the SpeechBrain recipes in ``recipes/speechbrain/`` take from sparse.

* Corpus preparation: SpeechBrain annotation files (JSON, one entry per utterance, paths as
  ``{data_root}/...`` so a prepared folder survives moving the corpus) written from sparse's own
  TIMIT and Speech Commands loaders, so the recipes need no file of SpeechBrain's recipes.
* Running a recipe: :func:`read_arguments` (the command line and the hyperparameters),
  :func:`start_experiment`, :func:`prepare_on_main` and, last, :func:`end_distributed`.
* Inside a ``Brain``: :class:`SpikingBrainMixin` holds what the recipes' Brains share (the
  features, the firing-rate regulariser and per-population rate logging, the parameter
  ranges after each update, the learning-rate annealing and checkpoint bookkeeping at the end
  of a stage, keeping the BatchNorms under ``torchrun``, fit then evaluate); each recipe's
  Brain adds its own outputs, loss and metrics.
* The analysis of a recipe's trained model: the modules are rebuilt from the training run's
  own saved ``hyperparams.yaml`` (so the analysis cannot use other encoder parameters than the
  training did), the best checkpoint is recovered with SpeechBrain's ``Checkpointer``, and
  :func:`sparse.analysis.analyze.analyze_model` writes what ``sparse analyze`` writes.

SpeechBrain itself (the ``speechbrain`` extra) is imported only inside the functions that
need it; corpus preparation works without it.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_text as atomic_write_text
from ..deprecation import renamed_keys, warn_renamed
from ..snn import constrain_parameters
from ..train.losses import firing_rates, rate_regularizer

__all__ = [
    "ANNOTATION_FILES",
    "PreparedCorpus",
    "RateMeter",
    "RecipeArguments",
    "RecipeError",
    "SpikingBrainMixin",
    "analyze_recipe",
    "end_distributed",
    "frame_lengths",
    "load_annotation",
    "pop_override",
    "prepare_on_main",
    "prepare_speech_commands",
    "prepare_timit",
    "read_arguments",
    "spiking_penalty",
    "start_experiment",
    "wrap_distributed",
]

#: Annotation file of each split, as SpeechBrain's TIMIT recipe names them.
ANNOTATION_FILES = {"train": "train.json", "valid": "dev.json", "test": "test.json"}
_OPTIONS_FILE = "prepare_options.json"
#: analysis hyperparameters renamed: former key -> key; the former is read for one release
RENAMED_HPARAMS = {"n_surrogates": "n_shuffles", "surrogate_method": "shuffle_method"}


class RecipeError(RuntimeError):
    """A recipe cannot go on; the message says what is missing and where."""


@dataclass
class PreparedCorpus:
    """``annotations``: split (``train``, ``valid``, ``test``) -> annotation JSON file;
    ``labels``: the output classes in a fixed order (the phones without the blank, or the
    keyword classes)."""

    annotations: dict[str, Path]
    labels: list[str]


def _data_path(path: str | Path, data_folder: Path) -> str:
    """``{data_root}/<relative>`` when ``path`` lies under ``data_folder``, else absolute; the
    recipes fill in ``data_root`` with ``str.format_map`` (SpeechBrain's ``replacements``), so
    braces in names are doubled."""
    p = Path(path).resolve()
    try:
        rel = p.relative_to(data_folder.resolve()).as_posix()
    except ValueError:
        return str(p).replace("{", "{{").replace("}", "}}")
    return "{data_root}/" + rel.replace("{", "{{").replace("}", "}}")


def _reuse(save_folder: Path, options: dict[str, Any]) -> PreparedCorpus | None:
    """The earlier preparation in ``save_folder`` when it was made with the same options."""
    opts_file = save_folder / _OPTIONS_FILE
    files = {split: save_folder / name for split, name in ANNOTATION_FILES.items()}
    if not opts_file.is_file() or not all(f.is_file() for f in files.values()):
        return None
    try:
        saved = json.loads(opts_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    if saved.get("options") != options:
        return None
    return PreparedCorpus(files, list(saved["labels"]))


def _write(save_folder: Path, options: dict[str, Any], labels: list[str],
           splits: dict[str, dict[str, dict[str, Any]]]) -> PreparedCorpus:
    save_folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, entries in splits.items():
        files[split] = atomic_write_text(save_folder / ANNOTATION_FILES[split],
                                         json.dumps(entries, indent=1))
    # written last: its presence says the annotation files are complete
    atomic_write_text(save_folder / _OPTIONS_FILE,
                      json.dumps({"options": options, "labels": labels}, indent=1))
    return PreparedCorpus(files, labels)


def _check_folder(data_folder: str | Path, what: str) -> Path:
    folder = Path(data_folder)
    if not folder.is_dir():
        raise RecipeError(
            f"data_folder {folder} does not exist or is not a folder: pass the {what} folder "
            "with --data_folder=PATH (or make one with `sparse synth`)")
    return folder


def prepare_timit(data_folder: str | Path, save_folder: str | Path, phone_set: int = 39,
                  skip_prep: bool = False) -> PreparedCorpus:
    """Write ``train.json``, ``dev.json`` (the 50 standard dev speakers) and ``test.json``
    (the 24 core-test speakers) for a TIMIT-layout corpus.

    Each entry: ``{"wav": "{data_root}/...", "duration": s, "spk_id": str, "phn": "sil b ..."}``
    with the phones folded to ``phone_set`` symbols. A preparation made with the same options
    is reused; ``skip_prep`` trusts whatever is in ``save_folder``.

    Raises:
        RecipeError: no such folder, or nothing prepared when ``skip_prep`` is set.
    """
    from ..data.timit import TimitDataset

    def build(data: Path) -> tuple[list[str], dict[str, dict[str, dict[str, Any]]]]:
        splits, labels = {}, []
        for split in ANNOTATION_FILES:
            dataset = TimitDataset(data, split=split, phone_set=phone_set)
            labels = list(dataset.phones.symbols)
            splits[split] = {
                e.id: {"wav": _data_path(e.path, data), "duration": round(e.duration, 5),
                       "spk_id": e.speaker, "phn": " ".join(e.phones or ())}
                for e in dataset.manifest
            }
        return labels, splits

    return _prepare(data_folder, save_folder, "TIMIT", {"corpus": "timit",
                    "phone_set": phone_set}, skip_prep, build)


def prepare_speech_commands(data_folder: str | Path, save_folder: str | Path,
                            task: str = "all", silence_fraction: float = 0.1,
                            unknown_fraction: float | None = None, seed: int = 0,
                            skip_prep: bool = False) -> PreparedCorpus:
    """Write ``train.json``, ``dev.json`` and ``test.json`` for a Speech Commands folder
    (the official validation and test lists), for the 35-word task (``"all"``) or the
    12-class one (``"12"``: ten words, ``_unknown_`` and ``_silence_``).

    Each entry: ``{"wav", "duration", "spk_id", "label", "start", "stop", "gain"}``; a word
    clip has ``start`` 0, ``stop`` -1 (the whole file) and ``gain`` 1, a ``_silence_`` clip a
    stretch of a background-noise file at a random gain (fixed by ``seed``).

    Raises:
        RecipeError: no such folder, or nothing prepared when ``skip_prep`` is set.
    """
    from ..data.speech_commands import SpeechCommandsDataset

    def build(data: Path) -> tuple[list[str], dict[str, dict[str, dict[str, Any]]]]:
        splits, labels = {}, []
        for split in ANNOTATION_FILES:
            dataset = SpeechCommandsDataset(data, split=split, task=task,
                                            silence_fraction=silence_fraction,
                                            unknown_fraction=unknown_fraction, seed=seed)
            labels = list(dataset.classes)
            entries = {}
            for e in dataset.manifest:
                start = int(e.extra.get("offset", 0))
                stop = start + int(e.extra["frames"]) if "frames" in e.extra else -1
                entries[e.id] = {"wav": _data_path(e.path, data), "duration": e.duration,
                                 "spk_id": e.speaker, "label": e.label, "start": start,
                                 "stop": stop, "gain": float(e.extra.get("gain", 1.0))}
            splits[split] = entries
        return labels, splits

    options = {"corpus": "speech_commands", "task": str(task),
               "silence_fraction": silence_fraction, "unknown_fraction": unknown_fraction,
               "seed": seed}
    return _prepare(data_folder, save_folder, "Speech Commands", options, skip_prep, build)


def _prepare(data_folder: str | Path, save_folder: str | Path, what: str,
             options: dict[str, Any], skip_prep: bool, build: Any) -> PreparedCorpus:
    """Check the corpus folder, then reuse, trust (``skip_prep``) or ``build`` the files."""
    save = Path(save_folder)
    data = _check_folder(data_folder, what)
    options = {**options, "data_folder": str(data.resolve())}
    if skip_prep:
        return _skipped(save)
    done = _reuse(save, options)
    if done is not None:
        return done
    labels, splits = build(data)
    return _write(save, options, labels, splits)


def _skipped(save: Path) -> PreparedCorpus:
    files = {split: save / name for split, name in ANNOTATION_FILES.items()}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing or not (save / _OPTIONS_FILE).is_file():
        raise RecipeError(
            f"skip_prep is set but {save} holds no complete preparation (missing: "
            f"{', '.join(missing) or _OPTIONS_FILE}); run once without skip_prep")
    labels = json.loads((save / _OPTIONS_FILE).read_text(encoding="utf-8"))["labels"]
    return PreparedCorpus(files, list(labels))


# ------------------------------------------------------------------------ running a recipe


@dataclass
class RecipeArguments:
    """A recipe's command line, read: ``hparams_file``, SpeechBrain's ``run_opts`` and
    ``overrides`` (the YAML text of the ``--key=value`` options, the recipe's own switches
    taken out), the loaded ``hparams``, and ``switches``: each of the recipe's own switches
    -> its value."""

    hparams_file: str
    run_opts: dict[str, Any]
    overrides: Any
    hparams: dict[str, Any]
    switches: dict[str, Any]


def pop_override(overrides: str | Mapping[str, Any] | None, key: str
                 ) -> tuple[Any, str | dict[str, Any]]:
    """``key``'s value in SpeechBrain's command-line overrides (``None`` when absent) and the
    overrides without it.

    hyperpyyaml refuses to override a key its file does not have, so a recipe's own switch
    (one no yaml file holds) has to be taken out before the file is loaded.
    ``overrides``: the YAML text ``speechbrain.parse_arguments`` returns (one ``key: value``
    per line) or a dict.
    """
    import yaml

    if overrides is None:
        return None, ""
    if isinstance(overrides, Mapping):
        rest = dict(overrides)
        return rest.pop(key, None), rest
    value, kept = None, []
    for line in overrides.splitlines():
        name, sep, text = line.partition(":")
        if sep and not line[:1].isspace() and name.strip() == key:
            value = yaml.safe_load(text)
        else:
            kept.append(line)
    return value, "\n".join(kept)


def read_arguments(argv: Sequence[str],
                   switches: Mapping[str, Callable[[Any], Any]] | None = None
                   ) -> RecipeArguments:
    """Parse a recipe's command line (``hparams.yaml --key=value ...``) as SpeechBrain does
    and load the hyperparameters with the overrides applied.

    ``switches``: the recipe's own command-line keys (ones no yaml file holds), each with the
    function that checks and converts its value (``None`` when the switch is absent); they
    are taken out, and checked, before the yaml file is loaded.
    """
    import speechbrain as sb
    from hyperpyyaml import load_hyperpyyaml

    hparams_file, run_opts, overrides = sb.parse_arguments(list(argv))
    values = {}
    for key, read in (switches or {}).items():
        value, overrides = pop_override(overrides, key)
        values[key] = read(value)
    with open(hparams_file, encoding="utf-8") as fin:
        text = fin.read()
    overrides = _renamed_overrides(overrides, text)
    hparams = load_hyperpyyaml(text, overrides)
    return RecipeArguments(hparams_file, run_opts, overrides, hparams, values)


def _renamed_overrides(overrides: str | dict[str, Any] | None, text: str
                       ) -> str | dict[str, Any] | None:
    """The command-line overrides with a former key of :data:`RENAMED_HPARAMS` written as its
    new key (with a ``FutureWarning``) where the hparams file ``text`` holds the new key:
    hyperpyyaml refuses to override a key its file does not have."""
    for former, new in RENAMED_HPARAMS.items():
        if not re.search(rf"^{new}\s*:", text, re.MULTILINE):
            continue  # a file written before the rename: its former key takes the override
        if isinstance(overrides, dict) and former in overrides:
            overrides = {(new if k == former else k): v for k, v in overrides.items()}
        elif isinstance(overrides, str) and re.search(rf"^{former}\s*:", overrides, re.M):
            overrides = re.sub(rf"^{former}(\s*:)", rf"{new}\1", overrides, flags=re.M)
        else:
            continue
        warn_renamed(f"--{former}", f"--{new}", stacklevel=4, category=FutureWarning)
    return overrides


def start_experiment(args: RecipeArguments) -> dict[str, Any]:
    """Before training: set the thread count (``num_threads``, when set) and, under
    ``torchrun``, the process group. Returns the arguments of SpeechBrain's
    ``create_experiment_directory`` (``output_folder`` with its copy of the hyperparameters
    and the logs), which the recipe script calls itself:
    ``sb.create_experiment_directory(**start_experiment(args))``, because SpeechBrain copies
    the file that calls it into the folder."""
    import speechbrain as sb

    if args.hparams.get("num_threads"):
        torch.set_num_threads(args.hparams["num_threads"])
    sb.utils.distributed.ddp_init_group(args.run_opts)
    return {"experiment_directory": args.hparams["output_folder"],
            "hyperparams_to_save": args.hparams_file, "overrides": args.overrides}


def prepare_on_main(prepare: Callable[..., PreparedCorpus], skip_prep: bool,
                    **options: Any) -> PreparedCorpus:
    """Run a corpus preparation (:func:`prepare_timit`, :func:`prepare_speech_commands`) in
    the main process only, then read what it wrote in every process."""
    from speechbrain.utils.distributed import run_on_main

    run_on_main(prepare, kwargs={**options, "skip_prep": skip_prep})
    return prepare(**options, skip_prep=True)


def load_annotation(json_path: str | Path, data_folder: str | Path) -> Any:
    """A SpeechBrain ``DynamicItemDataset`` of a prepared annotation file, its
    ``{data_root}`` paths filled in with ``data_folder``."""
    import speechbrain as sb

    return sb.dataio.dataset.DynamicItemDataset.from_json(
        json_path=str(json_path), replacements={"data_root": str(data_folder)})


# ------------------------------------------------------------------------ inside a Brain


def frame_lengths(relative: torch.Tensor, frames: int) -> torch.Tensor:
    """Valid frames per item from SpeechBrain's relative lengths ``(batch,)`` (share of the
    padded length) and the padded frame count: ``round(relative * frames)``, at least 1."""
    return torch.round(relative.float() * frames).long().clamp(1, frames)


def spiking_penalty(spikes: Mapping[str, torch.Tensor], lengths: torch.Tensor, dt_ms: float,
                    weight: float, r_min_hz: float, r_max_hz: float
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The firing-rate regulariser over every population and the per-neuron rates (Hz).

    Args:
        spikes: population -> ``(batch, frames, neurons)`` from the encoder.
        lengths: valid frames per item ``(batch,)``.
        dt_ms: the encoder's step.
        weight, r_min_hz, r_max_hz: see :func:`sparse.train.losses.rate_regularizer`.
    """
    rates = firing_rates(spikes, lengths, dt_ms)
    return rate_regularizer(rates, r_min_hz, r_max_hz, weight), rates


class RateMeter:
    """Mean firing rate of each population over a stage (weighted by batch size), for the
    train log: ``summary()`` -> ``{"rate_<population>_hz": value}``."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def update(self, rates: Mapping[str, torch.Tensor], batch: int) -> None:
        for name, r in rates.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(r.detach().mean()) * batch
        self.weight += batch

    def summary(self) -> dict[str, float]:
        w = max(self.weight, 1e-12)
        return {f"rate_{name}_hz": round(v / w, 3) for name, v in self.sums.items()}


class SpikingBrainMixin:
    """What the recipes' ``Brain`` classes share; it goes before ``speechbrain.Brain`` among
    the bases: ``class MyBrain(SpikingBrainMixin, sb.Brain)``.

    The hyperparameters it reads: modules ``encoder`` (a sparse encoder with ``dt`` in ms)
    and ``normalize``; ``compute_features``, ``augment`` and ``wav_augment``; the firing-rate
    regulariser's ``rate_weight``, ``rate_min_hz`` and ``rate_max_hz``; ``lr_annealing``,
    ``train_logger``, ``epoch_counter`` and the three ``*_dataloader_opts``.

    The subclass computes its stage's stats (``rates.summary()`` among them) and hands them
    to :meth:`end_stage`, and says in :meth:`test_report` what the test set's report holds.
    """

    #: The validation metric (lower is better) that anneals the learning rate, names the
    #: checkpoint kept and picks the one evaluated on the test set.
    checkpoint_key: str = "error"

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], run_opts: Mapping[str, Any]) -> Any:
        """The Brain built from the hyperparameters' ``modules``, ``opt_class`` and
        ``checkpointer``."""
        return cls(modules=hparams["modules"], opt_class=hparams["opt_class"],
                   hparams=hparams, run_opts=run_opts, checkpointer=hparams["checkpointer"])

    def augmenting(self, stage: Any) -> bool:
        """Whether this stage's batches are augmented (training with ``augment`` set)."""
        import speechbrain as sb

        return stage == sb.Stage.TRAIN and bool(self.hparams.augment)

    def encoder_inputs(self, batch: Any, stage: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's audio (augmented when training) as normalised features
        ``(batch, frames, features)`` and the valid frames per item ``(batch,)``."""
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        if self.augmenting(stage):
            wavs, wav_lens = self.hparams.wav_augment(wavs, wav_lens)
        feats = self.hparams.compute_features(wavs)
        feats = self.modules.normalize(feats, wav_lens)
        return feats, frame_lengths(wav_lens, feats.shape[1])

    def rate_penalty(self, spikes: Mapping[str, torch.Tensor], frames: torch.Tensor
                     ) -> torch.Tensor:
        """The firing-rate regulariser (a scalar) for the encoder's spikes (population ->
        ``(batch, frames, neurons)``); the rates go into the stage's :class:`RateMeter`."""
        penalty, rates = spiking_penalty(
            spikes, frames, self.hparams.encoder.dt, self.hparams.rate_weight,
            self.hparams.rate_min_hz, self.hparams.rate_max_hz)
        self.rates.update(rates, frames.shape[0])
        return penalty

    def _wrap_distributed(self) -> None:
        # SpeechBrain would turn the BatchNorms into SyncBatchNorm, which fails on CPU and
        # which sparse's valid-step normalisation cannot use (see wrap_distributed)
        if not wrap_distributed(self):
            super()._wrap_distributed()

    def on_fit_batch_end(self, batch: Any, outputs: Any, loss: Any, should_step: bool) -> None:
        if should_step:  # keep tau_u, tau_w, a, b in their ranges after each update
            constrain_parameters(self.modules.encoder)

    def on_stage_start(self, stage: Any, epoch: int | None = None) -> None:
        self.rates = RateMeter()

    def end_stage(self, stage: Any, stats: dict[str, Any], epoch: int | None = None) -> None:
        """The bookkeeping at the end of a stage, given its stats.

        Training: the stats are kept for the validation's log line. Validation: the learning
        rate is annealed on ``stats[checkpoint_key]``, both stages are logged and a
        checkpoint is saved (only the one with the lowest ``checkpoint_key`` is kept). Test:
        the stats are logged, and the main process writes :meth:`test_report`.
        """
        import speechbrain as sb
        from speechbrain.utils.distributed import if_main_process

        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        key = self.checkpoint_key
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(stats[key])
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr},
                train_stats=self.train_stats, valid_stats=stats)
            self.checkpointer.save_and_keep_only(meta={key: stats[key]}, min_keys=[key])
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current},
                test_stats=stats)
            if if_main_process():
                self._write_test_report(stats)

    def test_report(self, stats: dict[str, Any]) -> tuple[str | Path, list[tuple[str, Any]], str]:
        """The test set's detailed results: the file to write, its parts (each a heading and
        a SpeechBrain stats object whose ``write_stats`` writes on from there) and the line
        to print. Each recipe's Brain says what its report holds."""
        raise NotImplementedError

    def _write_test_report(self, stats: dict[str, Any]) -> None:
        path, parts, line = self.test_report(stats)
        text = io.StringIO()
        for heading, metrics in parts:
            text.write(heading)
            metrics.write_stats(text)
        atomic_write_text(path, text.getvalue())
        print(line)

    def fit_and_evaluate(self, train_data: Any, valid_data: Any, test_data: Any) -> None:
        """Train for ``epoch_counter``'s epochs (continuing from the last checkpoint), then
        evaluate the checkpoint with the lowest ``checkpoint_key`` on ``test_data``."""
        self.fit(self.hparams.epoch_counter, train_data, valid_data,
                 train_loader_kwargs=self.hparams.train_dataloader_opts,
                 valid_loader_kwargs=self.hparams.valid_dataloader_opts)
        self.evaluate(test_data, min_key=self.checkpoint_key,
                      test_loader_kwargs=self.hparams.test_dataloader_opts)


def wrap_distributed(brain: Any) -> bool:
    """Under ``torchrun``, wrap a Brain's trainable modules in ``DistributedDataParallel``
    and keep their BatchNorm layers as they are. Returns whether it wrapped anything (it
    does nothing outside a distributed launch).

    SpeechBrain's own wrapping first turns every BatchNorm into ``SyncBatchNorm``, which
    refuses CPU processes ("SyncBatchNorm layers only work with GPU modules") and which
    sparse's layers cannot use in any case: they normalise over the valid steps only, with
    the BatchNorm's parameters and running statistics. Each process keeps its own
    statistics, as under ``sparse train``. Call it from the Brain's ``_wrap_distributed``.
    """
    if not getattr(brain, "distributed_launch", False):
        return False
    from torch.nn.parallel import DistributedDataParallel

    on_cpu = brain.distributed_backend == "gloo" or str(brain.device).startswith("cpu")
    for name, module in brain.modules.items():
        if any(p.requires_grad for p in module.parameters()):
            brain.modules[name] = DistributedDataParallel(
                module, device_ids=None if on_cpu else [brain.device],
                find_unused_parameters=brain.find_unused_parameters)
    return True


def end_distributed() -> None:
    """End a process that ``torchrun`` launched (nothing outside such a launch): wait for the
    other processes, close the process group, flush the logs and exit with status 0.

    Call it last in a recipe script, after every file is written. A process that leaves a
    distributed run through the interpreter's normal teardown can abort there ("terminate
    called without an active exception": gloo's and the DDP reducer's C++ threads and the
    Python objects they hold are torn down in no fixed order), after all its work is done,
    and ``torchrun`` then reports the whole run as failed; the recipe tests saw it under
    load even with the process group closed. Exiting here skips that teardown."""
    import logging
    import os

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ---------------------------------------------------------------------------- the analysis


def _load_training_hparams(output_folder: Path) -> dict[str, Any]:
    from hyperpyyaml import load_hyperpyyaml

    path = output_folder / "hyperparams.yaml"
    if not path.is_file():
        raise RecipeError(
            f"{path} not found: output_folder must be the training run's folder (the one "
            "run_training.py wrote, holding hyperparams.yaml and save/); train first or pass "
            "--output_folder=PATH")
    with open(path, encoding="utf-8") as f:
        return load_hyperpyyaml(f)


def _featurizer(compute_features: Any, normalize: Any, device: torch.device):
    @torch.no_grad()
    def featurize(wavs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wavs = wavs.to(device)
        relative = lengths.to(device).float() / wavs.shape[1]
        feats = normalize(compute_features(wavs), relative)
        return feats, frame_lengths(relative, feats.shape[1])

    return featurize


def analyze_recipe(hparams: Mapping[str, Any], corpus: str, min_key: str | None = None,
                   max_key: str | None = None) -> dict[str, Any]:
    """Analyse the model a recipe trained; what ``run_analysis.py`` runs.

    Args:
        hparams: the analysis hyperparameters: ``output_folder`` (the training run's),
            ``analysis_folder``, ``data_folder`` (``None``: the training's), ``split``,
            ``num_utterances``, ``utterance_ids``, ``n_shuffles``, ``shuffle_method``,
            ``seed``, ``pair``, ``pair_bands``, ``plot_utterances``, ``more_than_utterances``,
            ``device``, ``progress``.
        corpus: ``"timit"`` or ``"speech_commands"``.
        min_key, max_key: which checkpoint to recover (e.g. ``min_key="PER"``).

        A former key of :data:`RENAMED_HPARAMS` is read as its new key, with a
        ``FutureWarning``.

    Returns:
        The summary of :func:`sparse.analysis.analyze.analyze_model`.

    Raises:
        RecipeError: no training run or no checkpoint in ``output_folder``, or a key given
            under both its former and its new name.
    """
    from ..analysis.analyze import analyze_model
    from ..data.speech_commands import SpeechCommandsDataset
    from ..data.timit import TimitDataset

    hparams = renamed_keys(hparams, RENAMED_HPARAMS, "hparams key '{key}'", error=RecipeError)
    output_folder = Path(hparams["output_folder"])
    train = _load_training_hparams(output_folder)
    checkpointer = train["checkpointer"]
    found = checkpointer.recover_if_possible(min_key=min_key, max_key=max_key)
    if found is None:
        raise RecipeError(
            f"no checkpoint in {checkpointer.checkpoints_dir}: the training run in "
            f"{output_folder} has not finished an epoch yet")
    device = torch.device(hparams.get("device") or "cpu")
    # the original SPARSE code's training file calls the encoder `model`
    encoder = train["encoder" if "encoder" in train else "model"].to(device).eval()
    normalize = train["normalize"].to(device).eval()
    compute_features = train["compute_features"].to(device).eval()
    data_folder = Path(hparams.get("data_folder") or train["data_folder"])
    split = hparams.get("split", "test")
    if corpus == "timit":
        dataset: Any = TimitDataset(_check_folder(data_folder, "TIMIT"), split=split)
    elif corpus == "speech_commands":
        dataset = SpeechCommandsDataset(_check_folder(data_folder, "Speech Commands"),
                                        split=split, task=str(train.get("kws_task", "all")))
    else:
        raise ValueError(f"corpus must be 'timit' or 'speech_commands', got {corpus!r}")
    pair = hparams.get("pair")
    pair_bands = hparams.get("pair_bands")
    ids = hparams.get("utterance_ids")
    return analyze_model(
        encoder, _featurizer(compute_features, normalize, device), dataset,
        Path(hparams["analysis_folder"]), dt_ms=float(encoder.dt),
        source=f"split '{split}' of {data_folder}",
        num_utterances=hparams.get("num_utterances", 64),
        ids=list(ids) if ids else None, n_shuffles=int(hparams.get("n_shuffles", 1000)),
        method=hparams.get("shuffle_method", "cut_reverse"), seed=int(hparams.get("seed", 0)),
        pair=tuple(pair) if pair else None, pair_bands=tuple(pair_bands) if pair_bands else None,
        plot_utterances=int(hparams.get("plot_utterances", 2)),
        more_than_utterances=int(hparams.get("more_than_utterances", 1)),
        progress=bool(hparams.get("progress", True)), log=print,
        title=f"sparse analysis: {output_folder.name} ({Path(found.path).name})")

