"""Phone sets: the 61 TIMIT phones, their standard foldings to 48 and 39 classes (Lee & Hon,
1989), and the mapping from espeak-ng's English phoneme mnemonics to TIMIT symbols.

Indices: :class:`PhoneSet` numbers its phones ``0 .. K-1`` in the order of its ``symbols``; no
CTC blank is included (a trainer adds it, e.g. as index ``K``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CLOSURE_OF",
    "ESPEAK_PAUSE",
    "ESPEAK_TO_TIMIT",
    "ESPEAK_TO_TIMIT_RHOTIC",
    "PHONES_39",
    "PHONES_48",
    "TIMIT_61",
    "PhoneSet",
    "UnknownPhonemeError",
    "espeak_to_timit",
    "fold",
    "phone_set",
]

#: The 61 phone symbols of TIMIT transcriptions (``.phn`` files).
TIMIT_61: tuple[str, ...] = (
    "aa", "ae", "ah", "ao", "aw", "ax", "ax-h", "axr", "ay", "b", "bcl", "ch", "d", "dcl", "dh",
    "dx", "eh", "el", "em", "en", "eng", "epi", "er", "ey", "f", "g", "gcl", "h#", "hh", "hv",
    "ih", "ix", "iy", "jh", "k", "kcl", "l", "m", "n", "ng", "nx", "ow", "oy", "p", "pau", "pcl",
    "q", "r", "s", "sh", "t", "tcl", "th", "uh", "uw", "ux", "v", "w", "y", "z", "zh",
)

# 61 -> 48 folding ("q" is deleted).
_TO_48: dict[str, str] = {p: p for p in TIMIT_61}
_TO_48.update({
    "ax-h": "ax", "axr": "er", "bcl": "vcl", "dcl": "vcl", "gcl": "vcl", "pcl": "cl",
    "tcl": "cl", "kcl": "cl", "em": "m", "eng": "ng", "nx": "n", "hv": "hh", "ux": "uw",
    "h#": "sil", "pau": "sil", "q": "",
})
# 48 -> 39 folding.
_48_TO_39: dict[str, str] = {
    "ao": "aa", "ax": "ah", "ix": "ih", "el": "l", "en": "n", "zh": "sh", "vcl": "sil",
    "cl": "sil", "epi": "sil",
}

#: The 48 classes, sorted.
PHONES_48: tuple[str, ...] = tuple(sorted({v for v in _TO_48.values() if v}))
#: The 39 classes used to score TIMIT phone recognition, sorted.
PHONES_39: tuple[str, ...] = tuple(sorted({_48_TO_39.get(p, p) for p in PHONES_48}))


class UnknownPhonemeError(ValueError):
    """A phone symbol outside the set it should belong to."""


def fold(phone: str, target: int = 39) -> str | None:
    """Fold one TIMIT-61 symbol to the 61, 48 or 39 set.

    Args:
        phone: a TIMIT symbol (case-insensitive).
        target: 61, 48 or 39.

    Returns:
        The folded symbol, or ``None`` for a phone that the folding deletes (``q``).

    Raises:
        UnknownPhonemeError: ``phone`` is not one of the 61 TIMIT symbols.
    """
    p = phone.strip().lower()
    if p not in _TO_48:
        raise UnknownPhonemeError(f"{phone!r} is not a TIMIT phone symbol")
    if target == 61:
        return p
    p48 = _TO_48[p]
    if not p48:
        return None
    if target == 48:
        return p48
    if target == 39:
        return _48_TO_39.get(p48, p48)
    raise ValueError(f"phone set must be 61, 48 or 39, got {target}")


@dataclass(frozen=True)
class PhoneSet:
    """An ordered phone inventory with encoding to and from indices ``0 .. len-1``."""

    symbols: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.symbols)

    def __len__(self) -> int:
        return len(self.symbols)

    def index(self, phone: str) -> int:
        try:
            return self._lookup[phone]
        except KeyError:
            raise UnknownPhonemeError(f"{phone!r} is not in this {len(self)}-phone set") from None

    def encode(self, phones: Iterable[str]) -> list[int]:
        """Symbols -> indices."""
        return [self.index(p) for p in phones]

    def decode(self, indices: Iterable[int]) -> list[str]:
        """Indices -> symbols."""
        return [self.symbols[int(i)] for i in indices]

    @property
    def _lookup(self) -> dict[str, int]:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = {p: i for i, p in enumerate(self.symbols)}
            object.__setattr__(self, "_cache", cache)
        return cache


def phone_set(size: int = 39) -> PhoneSet:
    """The 39-, 48- or 61-phone inventory as a :class:`PhoneSet`."""
    if size == 39:
        return PhoneSet(PHONES_39)
    if size == 48:
        return PhoneSet(PHONES_48)
    if size == 61:
        return PhoneSet(TIMIT_61)
    raise ValueError(f"phone set must be 61, 48 or 39, got {size}")


def fold_sequence(phones: Sequence[str], target: int = 39) -> list[str]:
    """Fold a TIMIT-61 sequence, dropping deleted phones (``q``)."""
    out = []
    for p in phones:
        f = fold(p, target)
        if f:
            out.append(f)
    return out


# --------------------------------------------------------------------------------------------
# espeak-ng -> TIMIT

#: Pause mnemonic prefix: every espeak phoneme starting with "_" is a pause.
ESPEAK_PAUSE = "_"

#: Release -> closure symbol, for stops and affricates (TIMIT marks the closure separately).
CLOSURE_OF: dict[str, str] = {
    "p": "pcl", "t": "tcl", "k": "kcl", "b": "bcl", "d": "dcl", "g": "gcl",
    "ch": "tcl", "jh": "dcl",
}

#: espeak English mnemonic -> TIMIT symbols (one or two; a two-phone entry splits the
#: segment in two equal halves). ``()`` means: merge into the previous phone (``;``, the
#: linking glide espeak inserts between vowels). Non-rhotic realisation of r-coloured vowels;
#: see :data:`ESPEAK_TO_TIMIT_RHOTIC` for the American accents.
ESPEAK_TO_TIMIT: dict[str, tuple[str, ...]] = {
    # stops, affricates, flaps, glottal stop
    "p": ("p",), "b": ("b",), "t": ("t",), "d": ("d",), "k": ("k",), "g": ("g",),
    "t2": ("t",), "t[": ("t",), "d2": ("d",), "tS": ("ch",), "dZ": ("jh",),
    "t#": ("dx",), "d#": ("dx",), "?": ("q",),
    # fricatives
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("zh",), "h": ("hh",), "x": ("hh",), "C": ("hh",),
    # nasals, liquids, glides
    "m": ("m",), "n": ("n",), "N": ("ng",), "m-": ("em",), "n-": ("en",), "N-": ("eng",),
    "l": ("l",), "l/": ("l",), "L": ("l",), "@L": ("el",), "r": ("r",), "r-": ("r",),
    "w": ("w",), "w#": ("w",), "j": ("y",),
    # monophthongs
    "i:": ("iy",), "i": ("iy",), "I": ("ih",), "I2": ("ix",), "I#": ("ix",), "E": ("eh",),
    "a": ("ae",), "aa": ("aa",), "a#": ("ax",), "A:": ("aa",), "0": ("aa",), "O2": ("aa",),
    "O:": ("ao",), "V": ("ah",), "U": ("uh",), "u:": ("uw",), "@": ("ax",), "@2": ("ax",),
    "@5": ("ax",), "@-": ("ax",), "3": ("ax",), "3:": ("er",), "IR": ("ih", "r"),
    "VR": ("ah", "r"),
    # diphthongs and centring diphthongs
    "eI": ("ey",), "aI": ("ay",), "aI2": ("ay",), "aU": ("aw",), "oU": ("ow",), "OI": ("oy",),
    "aI@": ("ay", "ax"), "aI3": ("ay", "ax"), "aU@": ("aw", "ax"), "i@": ("iy", "ax"),
    "i@3": ("ih", "ax"), "e@": ("eh", "ax"), "U@": ("uh", "ax"), "A@": ("aa",), "O@": ("ao",),
    "o@": ("ao",),
    # linking glide: no segment of its own
    ";": (),
}

#: Overrides for rhotic accents (espeak's American English puts the r inside the vowel).
ESPEAK_TO_TIMIT_RHOTIC: dict[str, tuple[str, ...]] = {
    "3": ("axr",), "aI3": ("ay", "axr"), "i@3": ("ih", "r"), "e@": ("eh", "r"),
    "U@": ("uh", "r"), "A@": ("aa", "r"), "O@": ("ao", "r"), "o@": ("ao", "r"), "aa": ("ae",),
}

#: espeak voices (accents) whose r-coloured vowels carry the r.
RHOTIC_ACCENTS: frozenset[str] = frozenset({"en-us", "en-us-nyc"})


def espeak_to_timit(name: str, accent: str = "en-us", strict: bool = True) -> tuple[str, ...]:
    """Map one espeak mnemonic (stress marks removed) to TIMIT-61 symbols.

    Pauses (``_``, ``_:``, ``_!`` ...) map to ``("pau",)``.

    Args:
        name: the mnemonic, e.g. ``"aI@"``.
        accent: the espeak voice the phoneme came from (rhotic accents differ).
        strict: raise on an unknown mnemonic; otherwise fall back to the longest known
            prefix (``"aI3x"`` -> ``"aI3"``), then raise if none is known.

    Raises:
        UnknownPhonemeError: ``name`` has no mapping.
    """
    if name.startswith(ESPEAK_PAUSE):
        return ("pau",)
    table = ESPEAK_TO_TIMIT
    if accent.split("+")[0].lower() in RHOTIC_ACCENTS and name in ESPEAK_TO_TIMIT_RHOTIC:
        return ESPEAK_TO_TIMIT_RHOTIC[name]
    if name in table:
        return table[name]
    if not strict:
        for cut in range(len(name) - 1, 0, -1):
            if name[:cut] in table:
                return espeak_to_timit(name[:cut], accent, strict=True)
    raise UnknownPhonemeError(f"espeak phoneme {name!r} (accent {accent}) has no TIMIT mapping")
