"""What every kind of training provides: the :class:`Task` interface.

A task owns everything that differs between kinds of training: which corpus reader opens a
split and what an utterance's target is, the network after the input normalisation, the loss,
the metrics of an evaluation, the fields of an epoch record and the text of a report. The
trainer, the run and the evaluation call these methods and never test a task's name; a new
kind of training is a new subclass registered in :data:`sparse.train.tasks.TASKS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn as nn

__all__ = ["DemoText", "Task", "TaskOutput", "Tally"]


class TaskOutput(NamedTuple):
    """``scores``: class log-probabilities ``(B, classes)`` or frame logits ``(B, T', C)``;
    ``lengths``: output frames ``(B,)`` (classification: the input lengths);
    ``spikes``: population -> ``(B, T, N)``."""

    scores: torch.Tensor
    lengths: torch.Tensor
    spikes: dict[str, torch.Tensor]


class DemoText(NamedTuple):
    """The wording of a task's ``sparse demo`` (:mod:`sparse.train.demo` prints it,
    :mod:`sparse.train.demo_page` writes it); percentages are numbers times 100."""

    #: printed after "sparse demo: " as the demo starts
    announce: str
    #: what the synthesised corpus's utterances are called ("keyword clips")
    corpus_items: str
    #: the page's title after "sparse demo: "
    title: str
    #: the page's first paragraph; fields {layers} (the cortex sizes) and {dt} (the step, ms)
    intro: str
    #: what the page's headline measures ("test accuracy")
    headline: str
    #: what the page calls the score of a guess that ignores the input ("chance")
    chance: str
    #: the line printed at the end; fields {value} (the test metric, %), {utterances},
    #: {chance} (%) and {minutes} (the whole demo)
    result: str
    #: the heading of the validation metric's column in the page's table of epochs
    valid_metric: str
    #: added to the heading of the page's spike raster of one utterance
    raster_note: str = ""
    #: whether the demo's model keeps activations large enough that freed memory should go
    #: back to the system after every step (:func:`sparse.train.memory.return_large_blocks`)
    return_memory: bool = False


class Tally:
    """The running counts of one evaluation (see :meth:`Task.tally`).

    :meth:`add` scores a batch and returns its summed loss; :meth:`sums` gives the counts to
    add up over processes; :meth:`result` turns the added-up counts into the metrics."""

    def add(self, out: TaskOutput, batch: dict[str, torch.Tensor], data: Any,
            indices: list[int], device: torch.device | str) -> float:
        raise NotImplementedError

    def sums(self) -> dict[str, float]:
        raise NotImplementedError

    def result(self, total: dict[str, float], items: float, data: Any) -> dict[str, Any]:
        raise NotImplementedError


class Task:
    """One kind of training. Subclasses set the class attributes and the methods below.

    Attributes:
        name: the config's ``task`` value.
        description: what it trains, for the config reference and messages.
        title: what it does, in a few words ("keyword spotting"), for messages.
        splits: the split names its corpus readers know.
        unit: what one utterance is called ("clips", "sentences").
        metric_name: the headline metric's key in an evaluation ("accuracy", "per"); an
            epoch record holds its validation value as ``valid_<metric_name>``.
        uses_ctc_rate: whether ``model.phoneme_ctc_rate_hz`` shapes the network.
        feature_cache: whether the inputs of a split are worth a cache file.
        audio_input: whether the model hears audio (then ``sparse predict`` can run it).
        is_classifier: one class per utterance (a trained model answers with its most
            probable classes) rather than a sequence of symbols (it answers with phones).
        synth_part: the part of the synthesised corpus it reads ("keywords", "timit"; the
            key of its counts in the corpus's ``info``).
        demo: the wording of its ``sparse demo``; ``None``: it has no demo.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    title: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "valid", "test")
    unit: ClassVar[str] = "utterances"
    metric_name: ClassVar[str] = ""
    uses_ctc_rate: ClassVar[bool] = False
    feature_cache: ClassVar[bool] = True
    audio_input: ClassVar[bool] = True
    is_classifier: ClassVar[bool] = False
    synth_part: ClassVar[str] = ""
    demo: ClassVar[DemoText | None] = None

    # ------------------------------------------------------------------ data

    def synth_root(self, cfg: Any, corpus: Any) -> Path:
        """The folder of this task's corpus inside the synthesised corpus ``corpus``."""
        raise NotImplementedError

    def dataset(self, cfg: Any, root: Path, split: str) -> Any:
        """The corpus reader of ``split``: the config's corpus format
        (:mod:`sparse.train.corpora`; ``data.corpus_format``, by default the task's own)."""
        from ..corpora import open_corpus

        return open_corpus(cfg, root, split)

    def classes(self, ds: Any) -> list[str]:
        """The class names (or output symbols) of the dataset ``ds``."""
        raise NotImplementedError

    def target(self, item: dict[str, Any]) -> Any:
        """The target of one read item, as a :class:`~sparse.train.data.FeatureSet` keeps it."""
        raise NotImplementedError

    def collate_targets(self, targets: list[Any]) -> dict[str, torch.Tensor]:
        """The targets of a batch as tensors (keys of the batch dict)."""
        raise NotImplementedError

    def load_inputs(self, cfg: Any, ds: Any, n: int, split: str, verbose: bool,
                    condition: str = "clean") -> Any:
        """The :class:`~sparse.train.data.FeatureSet` of the first ``n`` items of ``ds``
        (default: log-mel features of the audio, put through the test ``condition``)."""
        from ..data import extract_features

        return extract_features(cfg, ds, n, split, verbose, self, condition)

    def clip_seconds(self) -> float:
        """Seconds that shorter audio is zero-padded to before a trained model hears it, as
        the training clips were (0: no padding)."""
        return 0.0

    def chance(self, cfg: Any, corpus_root: Path) -> dict[str, Any]:
        """What a guess that ignores the input scores on the test split of the corpus at
        ``corpus_root``: ``metric`` (:attr:`metric_name`), ``value`` (a fraction) and ``how``
        (the guess, in words), with the task's own details."""
        raise NotImplementedError

    # ------------------------------------------------------------------ model

    def input_size(self, cfg: Any) -> int:
        """Channels of the network's input (what the normalisation sees)."""
        return int(cfg.features.n_mels)

    def build_network(self, cfg: Any, num_classes: int) -> tuple[nn.Module, nn.Module | None]:
        """The encoder and the classifier after it (``None``: the encoder scores itself)."""
        raise NotImplementedError

    def outputs(self, model: Any, x: torch.Tensor, lengths: torch.Tensor) -> TaskOutput:
        """The model's output for normalised inputs ``x`` ``(B, T, input_size)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ training

    def training_loss(self, out: TaskOutput, batch: dict[str, torch.Tensor],
                      device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
        """The mean loss of a batch and the counts to add to the epoch's running sums."""
        raise NotImplementedError

    def tally(self, keep_details: bool) -> Tally:
        """A new :class:`Tally` for one evaluation."""
        raise NotImplementedError

    def epoch_fields(self, train: dict[str, float], items: float, valid: dict[str, Any]
                     ) -> tuple[dict[str, Any], float]:
        """The task's fields of an epoch record, and the validation score (lower is better)."""
        raise NotImplementedError

    def progress_text(self, record: dict[str, Any]) -> str:
        """The validation metric of an epoch record, for the line printed after each epoch."""
        raise NotImplementedError

    def report(self, result: dict[str, Any], out_dir: Path) -> tuple[list[str], dict[str, Path]]:
        """Lines of an evaluation's text report, and the files (plots) written beside it."""
        raise NotImplementedError
