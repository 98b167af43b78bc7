"""Which utterances of a dataset an analysis looks at.

:func:`select_utterances` takes the longest ``N`` utterances of a dataset, as the original
SPARSE code picks them (utterances that tie in length at the cut are spread over classes and
speakers, reproducibly), or exactly those listed (:func:`read_ids` reads a list from a file),
and returns them as :class:`~sparse.analysis.collect.Utterance` objects for
:func:`~sparse.analysis.collect.collect_activity`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .collect import Utterance
from .options import DEFAULT_UTTERANCES, AnalyzeError

__all__ = ["longest_spread", "phone_segments", "read_ids", "select_utterances", "spread_ties"]


def read_ids(path: Path) -> list[str]:
    """Utterance ids from a file: one per line; blank lines and ``#`` comments ignored."""
    if not path.is_file():
        raise AnalyzeError(f"--ids file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line_no = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise AnalyzeError(
            f"--ids file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line "
            f"{line_no}): save it as UTF-8, one utterance id per line") from None
    ids = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            ids.append(line)
    if not ids:
        raise AnalyzeError(f"--ids file {path} lists no utterance ids")
    return ids


def select_utterances(dataset: Any, num: int | None = DEFAULT_UTTERANCES,
                      ids: Sequence[str] | None = None, seed: int = 0) -> list[Utterance]:
    """The utterances to analyse as :class:`~sparse.analysis.collect.Utterance` objects.

    With ``ids``: those utterances, in that order. Otherwise the ``num`` longest of the
    dataset, as the original SPARSE code picks them; where lengths tie at the cut (all 1 s
    keyword clips tie), the tied items are spread over classes and speakers
    (:func:`spread_ties`, reproducible with ``seed``), never taken in id order.

    Raises:
        AnalyzeError: an id is not in the dataset, or ``num`` is not positive.
    """
    manifest = list(dataset.manifest)
    if ids is not None:
        where = {e.id: i for i, e in enumerate(manifest)}
        missing = [x for x in ids if x not in where]
        if missing:
            sample = ", ".join(repr(e.id) for e in manifest[:3])
            raise AnalyzeError(
                f"{len(missing)} of the {len(ids)} utterance id(s) are not in this split "
                f"(e.g. {missing[0]!r}); its ids look like {sample}")
        chosen = [where[x] for x in ids]
    else:
        if num is None or num < 1:
            raise AnalyzeError(f"--num-utterances must be at least 1, got {num}")
        chosen = longest_spread(manifest, num, seed)
    out = []
    for i in chosen:
        item = dataset[i]
        out.append(Utterance(str(item["id"]), item["waveform"].numpy(),
                             int(item["sample_rate"]), segments=phone_segments(item)))
    return out


def phone_segments(item: Mapping[str, Any]) -> list[tuple[float, float, str]] | None:
    """(start s, end s, phone) of a phone-labelled item (TIMIT layout), else ``None``."""
    if "phone_segments" not in item or "phones" not in item:
        return None
    sr = float(item["sample_rate"])
    bounds = item["phone_segments"].tolist()
    return [(a / sr, b / sr, str(p)) for (a, b), p in zip(bounds, item["phones"], strict=True)]


def longest_spread(manifest: list[Any], num: int, seed: int = 0) -> list[int]:
    """Indices of the ``num`` longest entries of ``manifest`` (longest first); the entries
    that tie in length at the cut are chosen by :func:`spread_ties`."""
    order = sorted(range(len(manifest)), key=lambda i: -manifest[i].duration)
    if num >= len(order):
        return order
    cut = manifest[order[num - 1]].duration
    above = [i for i in order if manifest[i].duration > cut]
    tied = [i for i in order if manifest[i].duration == cut]
    return above + spread_ties([manifest[i] for i in tied], tied, num - len(above), seed)


def spread_ties(entries: list[Any], indices: list[int], num: int, seed: int = 0) -> list[int]:
    """``num`` of ``indices`` (whose ``entries`` tie in length), spread over classes
    (``label``) and speakers: each pick is an entry whose class, then whose speaker, has been
    picked least so far; among equals, a seeded random order decides."""
    rng = np.random.default_rng(seed)
    pool = list(rng.permutation(len(indices)))
    by_label: dict[Any, int] = {}
    by_speaker: dict[Any, int] = {}
    picked: list[int] = []
    for _ in range(min(num, len(pool))):
        k = min(range(len(pool)), key=lambda j: (
            by_label.get(entries[pool[j]].label, 0), by_speaker.get(entries[pool[j]].speaker, 0),
            j))
        e = entries[pool[k]]
        by_label[e.label] = by_label.get(e.label, 0) + 1
        by_speaker[e.speaker] = by_speaker.get(e.speaker, 0) + 1
        picked.append(indices[pool.pop(k)])
    return picked
