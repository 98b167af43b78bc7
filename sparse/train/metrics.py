"""Metrics: edit distance with alignment, phone error rate, accuracy and confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Alignment", "ErrorCounts", "align", "confusion_matrix", "format_alignment",
           "prior_baseline_per"]


@dataclass
class Alignment:
    """A minimum-edit alignment of a reference and a hypothesis.

    ``ops`` lists ``(op, ref, hyp)`` with ``op`` one of ``"="`` (match), ``"S"``
    (substitution), ``"D"`` (deletion: ``hyp`` is None), ``"I"`` (insertion: ``ref`` is None).
    """

    ops: list[tuple[str, Any, Any]]

    @property
    def substitutions(self) -> int:
        return sum(op == "S" for op, _, _ in self.ops)

    @property
    def deletions(self) -> int:
        return sum(op == "D" for op, _, _ in self.ops)

    @property
    def insertions(self) -> int:
        return sum(op == "I" for op, _, _ in self.ops)

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def align(ref: Sequence[Any], hyp: Sequence[Any]) -> Alignment:
    """Levenshtein alignment (unit costs). Ties prefer match/substitution, then deletion,
    then insertion, so the counts are those of the usual scoring tools."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int64)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        r = ref[i - 1]
        for j in range(1, m + 1):
            sub = cost[i - 1, j - 1] + (r != hyp[j - 1])
            cost[i, j] = min(sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    ops: list[tuple[str, Any, Any]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            ops.append(("=" if ref[i - 1] == hyp[j - 1] else "S", ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            ops.append(("D", ref[i - 1], None))
            i -= 1
        else:
            ops.append(("I", None, hyp[j - 1]))
            j -= 1
    ops.reverse()
    return Alignment(ops)


def format_alignment(alignment: Alignment) -> str:
    """Three aligned lines: REF, HYP and the operation of each column (S, D, I or blank)."""
    ref_row, hyp_row, op_row = ["REF:"], ["HYP:"], ["    "]
    for op, r, h in alignment.ops:
        rs = "*" if r is None else str(r)
        hs = "*" if h is None else str(h)
        w = max(len(rs), len(hs))
        ref_row.append(rs.ljust(w))
        hyp_row.append(hs.ljust(w))
        op_row.append(("" if op == "=" else op).ljust(w))
    return "\n".join(" ".join(row).rstrip() for row in (ref_row, hyp_row, op_row))


@dataclass
class ErrorCounts:
    """Summed edit operations over utterances; ``rate`` = (S + D + I) / N."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0
    utterances: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)

    def add(self, ref: Sequence[Any], hyp: Sequence[Any], utt_id: str | None = None,
            keep: bool = False) -> Alignment:
        a = align(ref, hyp)
        self.substitutions += a.substitutions
        self.deletions += a.deletions
        self.insertions += a.insertions
        self.reference_length += len(ref)
        self.utterances += 1
        if keep:
            self.details.append({
                "id": utt_id, "ref": list(ref), "hyp": list(hyp),
                "substitutions": a.substitutions, "deletions": a.deletions,
                "insertions": a.insertions,
                "error_rate": a.errors / max(1, len(ref)),
                "alignment": [list(op) for op in a.ops],
            })
        return a

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / max(1, self.reference_length)

    def summary(self) -> dict[str, Any]:
        return {
            "per": self.rate, "substitutions": self.substitutions, "deletions": self.deletions,
            "insertions": self.insertions, "reference_length": self.reference_length,
            "utterances": self.utterances,
        }


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], classes: int
                     ) -> np.ndarray:
    """``(classes, classes)`` counts, rows = true class, columns = predicted class."""
    out = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(out, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)),
              1)
    return out


def _repeat_errors(ref: Sequence[Any], phone: Any, k: int) -> int:
    """Edit distance between ``ref`` and ``k`` copies of ``phone``: the ``min(k, c)`` copies
    that match the ``c`` occurrences in ``ref`` count nothing, the others one error each,
    i.e. ``max(len(ref), k) - min(k, c)`` (equal to :func:`align`'s count)."""
    c = sum(1 for r in ref if r == phone)
    return max(len(ref), k) - min(k, c)


def prior_baseline_per(train: Sequence[Sequence[Any]], test: Sequence[Sequence[Any]],
                       max_repeats: int = 200) -> dict[str, Any]:
    """The phone error rate of a guess that ignores the audio: the most frequent phone of
    ``train``, repeated ``k`` times, ``k`` chosen to minimise the PER on ``train``; scored on
    ``test``. A model below it has learned something from the sound.

    Returns:
        ``{"per", "phone", "repeats", "errors", "reference_length"}``.

    Raises:
        ValueError: ``train`` or ``test`` holds no phone.
    """
    counts: dict[Any, int] = {}
    for seq in train:
        for p in seq:
            counts[p] = counts.get(p, 0) + 1
    n_test = sum(len(s) for s in test)
    if not counts or n_test == 0:
        raise ValueError("prior_baseline_per: the training and the test sequences must hold "
                         "phones")
    phone = min(counts, key=lambda p: (-counts[p], str(p)))
    n = np.array([len(s) for s in train])
    c = np.array([sum(1 for p in s if p == phone) for s in train])
    ks = np.arange(min(max_repeats, int(n.max())) + 1)[:, None]
    train_errors = (np.maximum(n[None], ks) - np.minimum(ks, c[None])).sum(1)
    k = int(np.argmin(train_errors))
    errors = sum(_repeat_errors(s, phone, k) for s in test)
    return {"per": errors / n_test, "phone": phone, "repeats": k, "errors": errors,
            "reference_length": n_test}
