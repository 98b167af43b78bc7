"""A trained model you can call: keywords or phones from audio, whole or streamed.

``sparse.load("best.pt")`` rebuilds a checkpoint written by ``sparse train`` (through
:func:`sparse.restore.restore_run`) as a :class:`Model`:

- ``model.predict(waveform, sample_rate)`` -> :class:`Prediction`: the top keywords with
  their probabilities (keyword-spotting models) or the phones with start and end times in
  seconds (ASR models, greedy CTC decoding as ``sparse evaluate`` does it).
- ``with model.stream() as s: s.push(chunk) ...; s.result()``: the same through the encoders'
  stateful streaming path, chunk by chunk; ``result()`` equals ``predict`` on the whole audio.

Audio goes through the training front end: it is resampled to the model's rate with the
corpus loaders' polyphase resampler (``sparse.data.audio.resample``), as the training corpus
was; a keyword clip shorter than the training clips (1 s) is zero-padded to that length, as
the training clips were (longer clips are scored whole: the readout averages over every step).
Audio with several channels is refused (``mono=True`` mixes the channels of a file down, as
the corpus loaders do). Every bad input is a :class:`PredictError` (or the
:class:`~sparse.train.checkpoints.CheckpointError` / :class:`~sparse.data.audio.AudioError` of
the checkpoint or file) whose message names the problem.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Keyword", "Model", "Phone", "PredictError", "Prediction", "Stream", "load"]


def _task(name: str) -> Any:
    """The :class:`~sparse.train.tasks.Task` of a task name (imported when first needed, so
    that importing this module stays light)."""
    from .train.tasks import task_of

    return task_of(name)


def _audio_tasks() -> dict[str, str]:
    """The tasks whose models hear audio: name -> what they do ("keyword spotting")."""
    from .train.tasks import TASKS

    return {name: task.title for name, task in TASKS.items() if task.audio_input}


class PredictError(ValueError):
    """Audio or a request a model cannot answer; the message says what and why."""


@dataclass(frozen=True)
class Keyword:
    """One keyword class and its probability (time-averaged readout softmax)."""

    label: str
    probability: float


@dataclass(frozen=True)
class Phone:
    """One decoded phone and the audio it spans, in seconds from the start."""

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Prediction:
    """What a model heard in ``duration`` seconds of audio.

    ``task`` is the model's task: a classifier's (``"kws"``) fills ``keywords`` with the most
    probable classes, best first; the phone recogniser's (``"asr"``) fills ``phones`` with
    the decoded phones in order. In a stream's
    :meth:`Stream.push` results, ``keywords`` are those of everything heard so far and
    ``phones`` only the phones completed by that chunk.
    """

    task: str
    duration: float
    keywords: list[Keyword] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The phone string (ASR) or the best keyword (KWS)."""
        if not _task(self.task).is_classifier:
            return " ".join(p.label for p in self.phones)
        return self.keywords[0].label if self.keywords else ""

    def to_dict(self) -> dict[str, Any]:
        """Plain containers (for JSON)."""
        d = asdict(self)
        d.pop("phones" if _task(self.task).is_classifier else "keywords")
        return d


def load(checkpoint: str | Path, *, task: str | None = None,
         device: str | torch.device = "cpu") -> Model:
    """The model of ``checkpoint`` (a ``.pt`` file written by ``sparse train`` or a run
    folder, whose ``checkpoints/best.pt`` is used), ready to call.

    Args:
        task: ``"kws"`` or ``"asr"`` to insist on a task: a checkpoint of the other task is
            refused; ``None`` takes whatever the checkpoint holds.
        device: where the model runs.

    Raises:
        CheckpointError: the file is missing, unreadable or not a training checkpoint.
        PredictError: the checkpoint is of another task than ``task``.
    """
    from .restore import restore_run

    titles = _audio_tasks()
    if task is not None and task not in titles:
        raise PredictError(f"unknown task {task!r}; the tasks are 'kws' (keyword spotting) "
                           "and 'asr' (phone recognition)")
    run = restore_run(checkpoint, device=device)
    if run.config.task not in titles:
        raise PredictError(
            f"checkpoint {run.checkpoint} holds a model of task '{run.config.task}', which "
            "takes no audio (its input is spike trains); sparse predict runs keyword spotting "
            "('kws') and phone recognition ('asr') models. Evaluate it with sparse evaluate.")
    if task is not None and run.config.task != task:
        raise PredictError(
            f"checkpoint {run.checkpoint} holds a {titles[run.config.task]} model (task "
            f"'{run.config.task}'), but a {titles[task]} model (task '{task}') was asked "
            "for; use a checkpoint of that task, or leave the task out to use this one.")
    return Model(run)


class Model:
    """A trained model (see :func:`load`). Attributes: ``task`` (``"kws"``/``"asr"``),
    ``classes`` (keywords or phones), ``sample_rate`` (Hz the model hears), ``checkpoint``."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.task: str = run.config.task
        self._classifier: bool = _task(self.task).is_classifier
        self.classes: list[str] = list(run.classes)
        self.sample_rate: int = int(run.config.features.sample_rate)
        self.checkpoint: Path = run.checkpoint
        self._featurize = run.featurizer()
        self._device = next(run.model.parameters()).device
        # the length short audio is zero-padded to (0: none), as the training clips were
        self.clip_seconds: float = _task(self.task).clip_seconds()

    def __repr__(self) -> str:
        return (f"Model({_task(self.task).title}, {len(self.classes)} classes, "
                f"{self.sample_rate} Hz, {self.checkpoint})")

    @property
    def ctc_frame_seconds(self) -> float:
        """Seconds per CTC output frame (ASR): pooling window x the SNN step."""
        enc = self.run.model.encoder
        return enc.pool_kernel * enc.dt / 1000.0

    # ------------------------------------------------------------------ whole audio

    def predict(self, waveform: Any, sample_rate: int, *, top: int = 5) -> Prediction:
        """Keywords or phones of one recording.

        Args:
            waveform: mono audio ``(samples,)`` or ``(1, samples)`` (a tensor or an array),
                floats in [-1, 1].
            sample_rate: its rate in Hz; other rates than :attr:`sample_rate` are resampled.
            top: keywords to return (KWS).
        """
        x = self._prepare(waveform, sample_rate, "waveform")
        return self._predict_samples(x, top)

    def predict_file(self, path: str | Path, *, top: int = 5, mono: bool = False) -> Prediction:
        """:meth:`predict` on an audio file (wav, flac, NIST SPHERE...); ``mono`` mixes a file
        with several channels down to one (refused otherwise)."""
        return self._predict_samples(self.read(path, mono=mono), top)

    def read(self, path: str | Path, *, mono: bool = False) -> np.ndarray:
        """An audio file as mono float32 samples at :attr:`sample_rate`.

        Raises:
            AudioError: missing, empty or unreadable file; PredictError: several channels
                and not ``mono``.
        """
        import soundfile as sf

        from .data.audio import AudioError, audio_info, load_audio

        frames, _ = audio_info(path)
        if frames == 0:
            raise AudioError(path, "no audio samples (0 frames)")
        channels = int(sf.info(str(path)).channels)
        if channels > 1 and not mono:
            raise PredictError(
                f"{path} has {channels} channels, but the model hears one (mono) channel; mix "
                "it down first (--mono for 'sparse predict', predict_file(..., mono=True) in "
                "Python: the mean of the channels, as the corpus loaders do).")
        x, _ = load_audio(path, self.sample_rate)
        return x

    def _prepare(self, waveform: Any, sample_rate: int, what: str) -> np.ndarray:
        """Check mono, non-empty, finite audio and bring it to the model's rate."""
        from .data.audio import resample

        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
                or sample_rate <= 0:
            raise PredictError(f"sample_rate must be a positive whole number of Hz, got "
                               f"{sample_rate!r}; this model hears {self.sample_rate} Hz audio")
        x = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) \
            else np.asarray(waveform)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            hint = (f"it has {x.shape[0]} channels; mix them down (e.g. waveform.mean(0))"
                    if x.ndim == 2 else f"it has {x.ndim} dimensions")
            raise PredictError(f"{what} must be mono audio of shape (samples,) or (1, samples), "
                               f"got shape {tuple(x.shape)}: {hint}")
        if x.size == 0:
            raise PredictError(f"{what} is empty (0 samples): there is nothing to hear")
        if not np.issubdtype(x.dtype, np.floating):
            raise PredictError(f"{what} must hold floats in [-1, 1], got {x.dtype}; convert "
                               "16-bit PCM with x / 32768")
        if not np.all(np.isfinite(x)):
            raise PredictError(f"{what} holds NaN or infinite samples")
        x = x.astype(np.float32)
        if int(sample_rate) != self.sample_rate:
            x = resample(x, int(sample_rate), self.sample_rate)
        return x

    def _pad_clip(self, x: np.ndarray) -> np.ndarray:
        n = int(round(self.clip_seconds * self.sample_rate))
        return np.pad(x, (0, n - len(x))) if len(x) < n else x

    @torch.no_grad()
    def _predict_samples(self, x: np.ndarray, top: int) -> Prediction:
        duration = len(x) / self.sample_rate
        x = self._pad_clip(x)
        wav = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
        feats, frames = self._featurize(wav, torch.tensor([wav.shape[1]]))
        model = self.run.model
        if self._classifier:
            log_probs = model.encoder(feats, frames).log_probs[0]
            return Prediction(self.task, duration, keywords=self._top(log_probs, top))
        out = model.encoder(feats, frames)
        logits = model.classifier(out.features)[0, : int(out.lengths[0])]
        decoder = _CTCRuns(self.classes, self.ctc_frame_seconds)
        phones = decoder.feed(logits.argmax(-1).tolist()) + decoder.close(duration)
        return Prediction(self.task, duration, phones=phones)

    def _top(self, log_probs: torch.Tensor, top: int) -> list[Keyword]:
        probs = log_probs.double().exp().cpu()
        k = max(1, min(int(top), len(self.classes)))
        values, idx = probs.topk(k)
        return [Keyword(self.classes[i], float(v))
                for v, i in zip(values.tolist(), idx.tolist(), strict=True)]

    # ------------------------------------------------------------------ streaming

    def stream(self, *, top: int = 5, sample_rate: int | None = None) -> Stream:
        """A fresh :class:`Stream` (a context manager) for audio at :attr:`sample_rate`.

        Raises:
            PredictError: ``sample_rate`` differs from the model's (a stream cannot be
                resampled chunk by chunk exactly), or the model normalises each utterance
                over its whole length (its features cannot be streamed).
        """
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise PredictError(
                f"a stream takes audio at the model's rate, {self.sample_rate} Hz, got "
                f"{sample_rate} Hz; resample it first (sparse.data.audio.resample) or use "
                "predict(), which resamples")
        if self.run.model.standardization == "utterance":
            raise PredictError(
                f"the model of {self.checkpoint} normalises each recording over its whole "
                "length (features.standardization: utterance), which a stream does not know in "
                "advance; use predict() on the whole recording")
        return Stream(self, top)


def _size(x: Any) -> int:
    return int(x.numel()) if isinstance(x, torch.Tensor) else int(np.asarray(x).size)


class _CTCRuns:
    """Greedy CTC decoding frame by frame: a phone is a run of equal non-blank argmaxes
    (index 0 = blank, index i = ``classes[i - 1]``); it is reported once its run ends, with
    the times of its first and last frames."""

    def __init__(self, classes: list[str], frame_s: float) -> None:
        self.classes, self.frame_s = classes, frame_s
        self.frame = 0
        self.prev: int | None = None
        self.start = 0

    def feed(self, best: list[int]) -> list[Phone]:
        done = []
        for k in best:
            if k != self.prev:
                done += self._end_run(None)
                self.prev, self.start = k, self.frame
            self.frame += 1
        return done

    def close(self, duration: float) -> list[Phone]:
        return self._end_run(duration)

    def _end_run(self, duration: float | None) -> list[Phone]:
        if self.prev is None or self.prev == 0:
            return []
        end = self.frame * self.frame_s
        if duration is not None:
            end = min(end, duration)
        return [Phone(self.classes[self.prev - 1], self.start * self.frame_s, end)]


class Stream:
    """Audio pushed chunk by chunk through the streaming filterbank and the encoder's stateful
    ``step``; made by :meth:`Model.stream`.

    ``push(chunk)`` takes mono float samples ``(samples,)`` at the model's rate and returns a
    :class:`Prediction` of what is new (KWS: the keywords of everything heard so far; ASR: the
    phones completed so far but not yet returned). ``result()`` ends the stream and returns the
    whole recording's prediction, equal to :meth:`Model.predict` on the same audio.
    ``seconds_computing`` is the time spent in ``push`` and ``result``.
    """

    def __init__(self, model: Model, top: int) -> None:
        from .restore import make_filterbank

        self.model, self.top = model, top
        enc = model.run.model.encoder
        self._fbank = make_filterbank(model.run.config).stream()
        self._state = enc.initial_state(1, dtype=torch.float32, device=model._device)
        self._samples = 0
        self._log_probs: torch.Tensor | None = None
        self._decoder = None if model._classifier \
            else _CTCRuns(model.classes, model.ctc_frame_seconds)
        self._phones: list[Phone] = []
        self._final: Prediction | None = None
        self.seconds_computing = 0.0

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @property
    def duration(self) -> float:
        """Seconds of audio pushed so far."""
        return self._samples / self.model.sample_rate

    def push(self, chunk: Any) -> Prediction:
        """Add mono samples (see the class); returns what is new."""
        if self._final is not None:
            raise PredictError("the stream has ended (result() was called); start a new one "
                               "with model.stream()")
        if _size(chunk) == 0:  # nothing arrived (e.g. an idle audio callback): nothing new
            return Prediction(self.model.task, self.duration)
        t0 = time.perf_counter()
        x = self.model._prepare(chunk, self.model.sample_rate, "chunk")
        new = self._feed(self._fbank.push(torch.from_numpy(x)[None]), len(x))
        self.seconds_computing += time.perf_counter() - t0
        return new

    def result(self) -> Prediction:
        """End the stream (idempotent) and return the whole recording's prediction."""
        if self._final is not None:
            return self._final
        if self._samples == 0:
            raise PredictError("the stream is empty (no audio was pushed): there is nothing "
                               "to hear")
        t0 = time.perf_counter()
        duration = self.duration
        m = self.model
        # the zero padding of a short clip, as predict() adds it
        missing = int(round(m.clip_seconds * m.sample_rate)) - self._samples
        if missing > 0:
            self._feed(self._fbank.push(torch.zeros(1, missing)), 0)
        self._feed(self._fbank.flush(), 0)
        if m._classifier:
            assert self._log_probs is not None
            final = Prediction(m.task, duration, keywords=m._top(self._log_probs, self.top))
        else:
            assert self._decoder is not None
            with torch.no_grad():
                last = m.run.model.encoder.finish(self._state)
                self._phones += self._decode(last)
            self._phones += self._decoder.close(duration)
            final = Prediction(m.task, duration, phones=list(self._phones))
        self._final = final
        self.seconds_computing += time.perf_counter() - t0
        return final

    @torch.no_grad()
    def _feed(self, feats: torch.Tensor, samples: int) -> Prediction:
        self._samples += samples
        m = self.model
        if feats.shape[1] == 0:
            return Prediction(m.task, self.duration)
        feats = feats.float().to(m._device)
        feats = m.run.model.standardize(feats, torch.tensor([feats.shape[1]], device=m._device))
        out, self._state = m.run.model.encoder.step(feats, self._state)
        if m._classifier:
            self._log_probs = out[0]
            return Prediction(m.task, self.duration, keywords=m._top(out[0], self.top))
        new = self._decode(out)
        self._phones += new
        return Prediction(m.task, self.duration, phones=new)

    def _decode(self, features: torch.Tensor) -> list[Phone]:
        assert self._decoder is not None
        if features.shape[1] == 0:
            return []
        logits = self.model.run.model.classifier(features)[0]
        return self._decoder.feed(logits.argmax(-1).tolist())
