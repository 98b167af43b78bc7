"""Phone sets, the espeak -> TIMIT mapping, the engine binding and the alignment."""

from __future__ import annotations

import numpy as np
import pytest

from sparse.data.alignment import align, rescale
from sparse.data.espeak import fresh_engine
from sparse.data.phonemes import (
    ESPEAK_TO_TIMIT,
    ESPEAK_TO_TIMIT_RHOTIC,
    PHONES_39,
    PHONES_48,
    TIMIT_61,
    UnknownPhonemeError,
    espeak_to_timit,
    fold,
    phone_set,
)
from sparse.data.synth import ACCENTS, phoneme_inventory
from sparse.data.words import KEYWORDS, load_vocabulary, make_sentence


def test_phone_set_sizes_and_folding():
    assert (len(TIMIT_61), len(PHONES_48), len(PHONES_39)) == (61, 48, 39)
    assert {fold(p, 39) for p in TIMIT_61} - {None} == set(PHONES_39)
    assert {fold(p, 48) for p in TIMIT_61} - {None} == set(PHONES_48)
    assert fold("q") is None
    assert [fold(p) for p in ("pcl", "h#", "pau", "ix", "zh", "axr", "ux", "el", "AO")] == [
        "sil", "sil", "sil", "ih", "sh", "er", "uw", "l", "aa"]
    assert fold("ix", 48) == "ix" and fold("ix", 61) == "ix"
    with pytest.raises(UnknownPhonemeError, match="xx"):
        fold("xx")
    ps = phone_set(39)
    assert ps.decode(ps.encode(["sil", "aa", "z"])) == ["sil", "aa", "z"]
    assert ps.encode(["aa", "z"]) == [0, 38]
    with pytest.raises(UnknownPhonemeError):
        ps.index("ix")


def test_mapping_targets_are_timit_symbols():
    for table in (ESPEAK_TO_TIMIT, ESPEAK_TO_TIMIT_RHOTIC):
        for name, target in table.items():
            assert set(target) <= set(TIMIT_61), name
    assert espeak_to_timit("_:") == ("pau",)
    assert espeak_to_timit("3", "en-us") == ("axr",) and espeak_to_timit("3", "en") == ("ax",)
    with pytest.raises(UnknownPhonemeError, match="zz"):
        espeak_to_timit("zz")
    assert espeak_to_timit("aI3x", strict=False) == espeak_to_timit("aI3")


def test_vocabulary_and_sentences():
    vocab = load_vocabulary(3000)
    assert len(vocab) == len(set(vocab.words)) == 3000
    assert all(w.isalpha() and w.islower() for w in vocab.words)
    rng = np.random.default_rng(0)
    lengths = [len(make_sentence(vocab, rng)) for _ in range(300)]
    assert min(lengths) == 4 and max(lengths) == 12
    assert len(KEYWORDS) == 35


def _unmapped(inventory: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    bad = []
    for name, per_accent in inventory.items():
        for accent in per_accent:
            try:
                espeak_to_timit(name, accent, strict=True)
            except UnknownPhonemeError:
                bad.append((name, accent))
    return bad


WORDS = list(load_vocabulary(3000).words) + list(KEYWORDS)


def test_espeak_inventory_maps_completely_all_accents():
    """What the engine gives the whole vocabulary (and the keywords), in every accent of the
    corpus, has a TIMIT mapping (text-to-phoneme translation: fast)."""
    inventory = phoneme_inventory(WORDS, method="text")
    assert {a for per in inventory.values() for a in per} == set(ACCENTS.values())
    assert len(inventory) > 45
    assert _unmapped(inventory) == []


@pytest.mark.parametrize("accent", ["en-us", "en-gb-scotland"])
def test_espeak_synthesis_emits_what_the_translation_says(accent):
    """Real synthesis of the whole vocabulary emits only mapped phonemes, and nothing beyond
    the translation's phonemes but pauses."""
    spoken = phoneme_inventory(WORDS, [accent], method="synthesis")
    text = phoneme_inventory(WORDS, [accent], method="text")
    assert _unmapped(spoken) == []
    def sounds(inv: dict) -> set[str]:
        return {n for n in inv if not n.startswith("_")}

    assert sounds(spoken) == sounds(text)


def test_fresh_engine_is_reproducible():
    outs = []
    for _ in range(2):
        with fresh_engine() as engine:
            engine.synthesize("warm up the engine first", voice="en-gb-x-rp+m3")
            outs.append(engine.synthesize("hello there", voice="en-us+f3", seed=5).audio)
    assert np.array_equal(outs[0], outs[1]) and len(outs[0]) > 5000


def test_alignment_of_a_sentence():
    with fresh_engine() as engine:
        syn = engine.synthesize("the quick brown fox jumped, over the lazy dog", voice="en-us")
    segs, words = align(syn, "en-us")
    assert segs[0].start == 0 and segs[-1].end == len(syn.audio)
    assert all(a.end == b.start for a, b in zip(segs, segs[1:], strict=False))
    assert all(s.end > s.start for s in segs) and {s.label for s in segs} <= set(TIMIT_61)
    labels = [s.label for s in segs]
    assert labels[0] == "h#" and labels[-1] == "h#" and "pau" in labels  # the comma
    i = labels.index("k")
    assert labels[i - 1] == "kcl"
    assert [w.word for w in words] == "the quick brown fox jumped over the lazy dog".split()
    for w in words:
        assert 0 <= w.start < w.end <= len(syn.audio)
    # resampled to 16 kHz with 1000 samples of silence in front: still contiguous and whole
    total = 1000 + int(len(syn.audio) * 16000 / 22050) + 500
    moved = rescale(segs, 16000 / 22050, 1000, total)
    assert moved[0].start == 0 and moved[-1].end == total and moved[0].label == "h#"
    assert all(a.end == b.start for a, b in zip(moved, moved[1:], strict=False))


def test_synth_modules_do_not_import_torch():
    """Worker processes import sparse.data.synth; it must stay light (no torch)."""
    import subprocess
    import sys

    code = "import sys, sparse.data.synth, sparse.data.cli; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
