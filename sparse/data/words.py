"""Words for the synthesised corpus: the 35 Speech Commands keywords, a vocabulary of English
content and function words (content words from the word lists that the PyPI package
``wonderwords`` ships), and a template grammar that makes sentences of 4-12 words from it.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import numpy as np

__all__ = [
    "KEYWORDS",
    "KWS12_WORDS",
    "Vocabulary",
    "load_vocabulary",
    "make_sentence",
]

#: The 35 words of Google Speech Commands v2, in alphabetical order.
KEYWORDS: tuple[str, ...] = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward",
    "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one",
    "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow",
    "yes", "zero",
)

#: The 10 command words of the 12-class Speech Commands task (plus _unknown_ and _silence_).
KWS12_WORDS: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
)

PRONOUNS = ("i", "you", "we", "they")
DETERMINERS = ("the", "a", "this", "that", "every", "some", "my", "your", "our", "their", "each")
MODALS = ("will", "can", "should", "must", "might", "would", "could", "may")
PREPOSITIONS = (
    "in", "on", "at", "with", "from", "near", "under", "over", "behind", "beside", "for",
    "without", "after", "before", "into", "across",
)
CONJUNCTIONS = ("and", "or", "but")
FUNCTION_WORDS: tuple[str, ...] = tuple(
    dict.fromkeys(
        PRONOUNS + DETERMINERS + MODALS + PREPOSITIONS + CONJUNCTIONS + ("an", "not", "very")
    )
)

# Sentence templates. P pronoun, D determiner, M modal, V verb, A adjective, N noun,
# R preposition, C conjunction; lower-case tokens are literal words. Lengths 4 to 12.
_TEMPLATES: tuple[str, ...] = (
    "P V D N",
    "D A N M V",
    "P M V D N",
    "P M V D A N",
    "D N M V D A N",
    "P M not V D N",
    "P M V D N R D N",
    "D A N M V R D N",
    "P M V D N C D A N",
    "D N M V D A N R D N",
    "P M V D very A N R D N",
    "D A N M not V D A N R D N",
    "D N R D N M V D A N",
    "P M V D N C P M V D A N",
)


@dataclass(frozen=True)
class Vocabulary:
    """The words sentences are made of, by part of speech (all lower case ASCII letters)."""

    nouns: tuple[str, ...]
    verbs: tuple[str, ...]
    adjectives: tuple[str, ...]

    @property
    def words(self) -> tuple[str, ...]:
        """Every word a sentence can contain, function words included, without repeats."""
        return tuple(
            dict.fromkeys(FUNCTION_WORDS + self.nouns + self.verbs + self.adjectives)
        )

    def __len__(self) -> int:
        return len(self.words)


def _read_list(name: str) -> list[str]:
    try:
        assets = importlib.resources.files("wonderwords") / "assets"
    except ModuleNotFoundError as exc:  # pragma: no cover - dependency is declared
        raise RuntimeError(
            "the synthesised corpus needs the PyPI package 'wonderwords' for its word lists "
            "(pip install wonderwords)"
        ) from exc
    text = (assets / f"{name}.txt").read_text(encoding="utf-8")
    return [w.strip() for w in text.splitlines() if w.strip()]


def load_vocabulary(size: int = 3000) -> Vocabulary:
    """Pick ``size`` words (function words included) from the shipped word lists.

    The choice is fixed (it does not depend on the corpus seed) so that corpora built with
    different seeds share one vocabulary. Words are lower-case ASCII letters only, 2-14
    letters long, and not on the package's profanity list.

    Args:
        size: total number of distinct words, at least 200.
    """
    if size < 200:
        raise ValueError(f"vocabulary size must be at least 200, got {size}")
    banned = set(_read_list("profanitylist"))

    def clean(words: list[str]) -> list[str]:
        out = [
            w for w in words
            if w.isascii() and w.isalpha() and w.islower() and 2 <= len(w) <= 14
            and w not in banned and w not in FUNCTION_WORDS
        ]
        return sorted(dict.fromkeys(out))

    verbs = clean(_read_list("verblist"))
    adjectives = [w for w in clean(_read_list("adjectivelist")) if w not in verbs]
    nouns = [w for w in clean(_read_list("nounlist")) if w not in verbs and w not in adjectives]
    budget = size - len(FUNCTION_WORDS)
    n_verbs = min(len(verbs), round(budget * 0.2))
    n_adj = min(len(adjectives), round(budget * 0.18))
    n_nouns = budget - n_verbs - n_adj
    if n_nouns > len(nouns):
        available = len(FUNCTION_WORDS) + len(nouns) + n_verbs + n_adj
        raise ValueError(f"vocabulary size {size} exceeds the {available} words available")
    rng = np.random.default_rng(20240611)

    def pick(words: list[str], n: int) -> tuple[str, ...]:
        idx = np.sort(rng.choice(len(words), size=n, replace=False))
        return tuple(words[i] for i in idx)

    return Vocabulary(pick(nouns, n_nouns), pick(verbs, n_verbs), pick(adjectives, n_adj))


def make_sentence(vocab: Vocabulary, rng: np.random.Generator) -> list[str]:
    """Draw one sentence (a list of 4-12 lower-case words) from the template grammar."""
    template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))].split()
    slots = {
        "P": PRONOUNS, "D": DETERMINERS, "M": MODALS, "V": vocab.verbs, "A": vocab.adjectives,
        "N": vocab.nouns, "R": PREPOSITIONS, "C": CONJUNCTIONS,
    }
    words = [
        str(slots[tok][int(rng.integers(len(slots[tok])))]) if tok in slots else tok
        for tok in template
    ]
    for i, w in enumerate(words[:-1]):  # "a apple" -> "an apple"
        if w == "a" and words[i + 1][0] in "aeiou":
            words[i] = "an"
    return words
