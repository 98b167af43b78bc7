"""Stage 2 of the analysis pipeline: the significance of phase-amplitude coupling.

:func:`assess_coupling` tests every ordered population pair x phase band x amplitude band x
utterance of an :class:`~sparse.analysis.collect.Activity`, for the speech and for the
Gaussian-noise control (:func:`~sparse.analysis.significance.pac_table`, shuffles drawn from
stream 0 and stream 1 of the same seed), and returns both tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .collect import Activity
from .options import PacOptions
from .significance import PACResults, pac_table

__all__ = ["CouplingResults", "assess_coupling", "pac_sets"]


@dataclass
class CouplingResults:
    """The PAC significance of one activity: ``model`` (speech) and ``control`` (the noise
    control), one row per test (:class:`~sparse.analysis.significance.PACResults`)."""

    model: PACResults
    control: PACResults


def _progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="test", leave=False)


def pac_sets(sets: Sequence[tuple[str, Mapping[str, Any]]], ids: Sequence[str], dt_ms: float,
             options: PacOptions, progress: bool = True) -> list[PACResults]:
    """:func:`~sparse.analysis.significance.pac_table` of each ``(label, populations)`` of
    ``sets``, the k-th with shuffle stream k, with a progress bar each."""
    out = []
    for stream, (label, pops) in enumerate(sets):
        bar = _progress_bar(len(ids), f"PAC significance ({label})", progress)

        def report(done: int, total: int, bar: Any = bar) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        out.append(pac_table(pops, dt_ms, options, stream=stream, utterance_ids=list(ids),
                             label=label, progress=report))
        if bar is not None:
            bar.close()
    return out


def assess_coupling(activity: Activity, options: PacOptions | None = None, *,
                    progress: bool = True) -> CouplingResults:
    """Shuffle-tested PAC of ``activity``'s speech (label ``"model"``, stream 0) and noise
    control (``"noise control"``, stream 1) under ``options`` (default: the defaults).

    Bands above Nyquist, utterances too short for a band's filter and silent populations are
    skipped and listed in each table's ``skipped``; see
    :func:`~sparse.analysis.significance.pac_table` for the columns.
    """
    model, control = pac_sets((("model", activity.speech), ("noise control", activity.control)),
                              activity.ids, activity.dt_ms, options or PacOptions(),
                              progress=progress)
    return CouplingResults(model, control)
