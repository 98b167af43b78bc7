"""Turn espeak-ng phoneme and word events into TIMIT-style segment labels.

espeak reports the sample where each phoneme starts. For a stop it reports the release: the
silent (or voice-bar) closure before it is counted in the previous phoneme. TIMIT labels the
closure separately (``pcl p``, ``tcl ch`` ...), so :func:`align` finds the low-energy run just
before each release and labels it as the closure. Leading and trailing silence become ``h#``,
pauses inside the utterance ``pau``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .espeak import Synthesis
from .phonemes import CLOSURE_OF, espeak_to_timit

__all__ = ["Segment", "WordSegment", "align", "rescale"]


@dataclass
class Segment:
    """A labelled span of samples ``[start, end)``; ``word`` indexes the word list or is -1."""

    label: str
    start: int
    end: int
    word: int = -1


@dataclass
class WordSegment:
    """A word and its span of samples ``[start, end)``."""

    word: str
    start: int
    end: int


def _frame_energy(audio: np.ndarray, hop: int) -> np.ndarray:
    n = len(audio) // hop
    x = audio[: n * hop].astype(np.float64).reshape(n, hop)
    return np.sqrt(np.mean(x * x, axis=1)) if n else np.zeros(0)


def align(
    synth: Synthesis, accent: str, strict: bool = True
) -> tuple[list[Segment], list[WordSegment]]:
    """TIMIT-61 segments and word spans for one synthesis, in the engine's samples.

    Args:
        synth: the engine's output (audio, phoneme and word events).
        accent: the espeak voice (without variant) that spoke it.
        strict: raise :class:`~sparse.data.phonemes.UnknownPhonemeError` on an unmapped
            espeak phoneme instead of falling back to a prefix.

    Returns:
        ``(segments, words)``: segments cover ``[0, len(audio))`` contiguously, start and end
        with ``h#``; words are in text order.
    """
    n = len(synth.audio)
    sr = synth.sample_rate
    word_of_pos = {w.text_position: i for i, w in enumerate(synth.words)}
    raw: list[Segment] = []
    events = [e for e in synth.phonemes if 0 <= e.start < n]
    for i, ev in enumerate(events):
        end = events[i + 1].start if i + 1 < len(events) else n
        if end <= ev.start:
            continue
        labels = espeak_to_timit(ev.name, accent, strict=strict)
        word = -1 if labels == ("pau",) else word_of_pos.get(ev.text_position, -1)
        if not labels:  # linking glide: extend the previous phone
            if raw:
                raw[-1].end = end
                continue
            labels = ("pau",)
        if len(labels) == 1:
            raw.append(Segment(labels[0], ev.start, end, word))
        else:
            bounds = np.linspace(ev.start, end, len(labels) + 1).round().astype(int)
            for lab, a, b in zip(labels, bounds[:-1], bounds[1:], strict=True):
                if b > a:
                    raw.append(Segment(lab, int(a), int(b), word))
    # leading / trailing silence -> h#, merged pauses
    segs: list[Segment] = []
    first = raw[0].start if raw else n
    if first > 0:
        segs.append(Segment("h#", 0, first))
    for seg in raw:
        if seg.label == "pau" and segs and segs[-1].label in ("pau", "h#"):
            segs[-1].end = seg.end
        else:
            segs.append(seg)
    if not segs:
        return [Segment("h#", 0, max(n, 1))], []
    if segs[0].label == "pau":
        segs[0].label = "h#"
    if segs[-1].label == "pau":
        segs[-1].label = "h#"
    elif segs[-1].end < n:
        segs.append(Segment("h#", segs[-1].end, n))
    segs[-1].end = max(segs[-1].end, n)
    segs = _add_closures(segs, synth.audio, sr)
    words = []
    for wi, w in enumerate(synth.words):
        mine = [s for s in segs if s.word == wi]
        if not mine:
            continue
        text = synth.text[w.text_position - 1 : w.text_position - 1 + w.length]
        words.append(WordSegment(text.lower(), mine[0].start, mine[-1].end))
    return segs, words


def _add_closures(segs: list[Segment], audio: np.ndarray, sr: int) -> list[Segment]:
    hop = max(1, round(0.0025 * sr))
    energy = _frame_energy(audio, hop)
    peak = float(np.percentile(energy, 95)) if len(energy) else 0.0
    quiet = energy < max(0.04 * peak, 1.0)
    out: list[Segment] = []
    for seg in segs:
        closure = CLOSURE_OF.get(seg.label)
        prev = out[-1] if out else None
        if closure is None or prev is None or prev.end != seg.start:
            out.append(seg)
            continue
        prev_len = prev.end - prev.start
        if prev.label in ("h#", "pau"):
            cl_start = seg.start - int(min(0.03 * sr, 0.5 * prev_len))
        else:
            limit = prev.start + max(1, int(0.3 * prev_len))
            f = min(seg.start // hop, len(quiet)) - 1
            start = seg.start
            while f >= 0 and f * hop >= limit and quiet[f]:
                start = f * hop
                f -= 1
            if seg.start - start < hop:
                start = seg.start - int(min(0.025 * sr, 0.35 * prev_len))
            cl_start = max(start, limit)
        if cl_start >= seg.start or cl_start <= prev.start:
            out.append(seg)
            continue
        prev.end = cl_start
        out.append(Segment(closure, cl_start, seg.start, seg.word))
        out.append(seg)
    return out


def rescale(
    segs: list[Segment], ratio: float, offset: int, total: int
) -> list[Segment]:
    """Map segments to a resampled, shifted signal of ``total`` samples.

    Boundaries become ``round(b * ratio) + offset``; segments that shrink to nothing are
    dropped; the uncovered head ``[0, first)`` and tail ``[last, total)`` become (or extend)
    ``h#``, so the result covers ``[0, total)`` contiguously.
    """
    out: list[Segment] = []
    for s in segs:
        a = int(round(s.start * ratio)) + offset
        b = min(int(round(s.end * ratio)) + offset, total)
        if out:
            a = out[-1].end
        if b <= a:
            continue
        out.append(Segment(s.label, a, b, s.word))
    if not out:
        return [Segment("h#", 0, total)]
    if out[0].start > 0:
        if out[0].label == "h#":
            out[0].start = 0
        else:
            out.insert(0, Segment("h#", 0, out[0].start))
    if out[-1].end < total:
        if out[-1].label == "h#":
            out[-1].end = total
        else:
            out.append(Segment("h#", out[-1].end, total))
    return out
