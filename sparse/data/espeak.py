"""In-process binding to the espeak-ng engine that the PyPI package ``espeakng-loader`` bundles.

The shared library is loaded with :mod:`ctypes`; nothing is installed system-wide and nothing is
fetched from the network. The engine keeps global state, so there is one :class:`Espeak` per
process (use :func:`get_engine`), and calls into it are serialised by a lock. Worker processes of
:mod:`sparse.data.synth` each initialise their own engine.

The engine writes 16-bit mono audio at its native rate (22,050 Hz) and reports, through its
synthesis callback, one event per phoneme (eSpeak's ASCII mnemonic, e.g. ``'aU``, ``t#``, ``@L``)
and per word, each with the index of the output sample where it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Espeak",
    "EspeakError",
    "PhonemeEvent",
    "Synthesis",
    "WordEvent",
    "fresh_engine",
    "get_engine",
    "list_variants",
]

# espeak_EVENT_TYPE
_EV_LIST_TERMINATED = 0
_EV_WORD = 1
_EV_END = 5
_EV_MSG_TERMINATED = 6
_EV_PHONEME = 7
# espeak_AUDIO_OUTPUT / options / flags
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
# espeak_PARAMETER
_P_RATE, _P_VOLUME, _P_PITCH, _P_RANGE, _P_WORDGAP = 1, 2, 3, 4, 7


class EspeakError(RuntimeError):
    """The espeak-ng library could not be loaded, initialised or asked to speak."""


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme as the engine reports it.

    Attributes:
        name: eSpeak ASCII mnemonic with stress marks removed (``aU``, ``t#``, ``_:``).
        start: first output sample of the phoneme, at :attr:`Synthesis.sample_rate`.
        text_position: 1-based character offset of the word it belongs to in the input text.
        stress: ``"'"`` (primary), ``","`` (secondary) or ``""``.
    """

    name: str
    start: int
    text_position: int
    stress: str = ""


@dataclass(frozen=True)
class WordEvent:
    """Start of a word: 1-based character offset and length in the text, and its first sample."""

    text_position: int
    length: int
    start: int


@dataclass
class Synthesis:
    """Result of one :meth:`Espeak.synthesize` call.

    Attributes:
        audio: int16 samples, shape ``(num_samples,)``, at ``sample_rate`` Hz.
        sample_rate: the engine's output rate in Hz (22,050 for the bundled engine).
        phonemes: phoneme events in time order (pauses included, named ``_``, ``_:`` ...).
        words: word events in time order.
        text: the text that was spoken.
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: list[PhonemeEvent] = field(default_factory=list)
    words: list[WordEvent] = field(default_factory=list)
    text: str = ""


def _package_paths() -> tuple[Path, Path]:
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise EspeakError(
            "the synthesised corpus needs the PyPI package 'espeakng-loader' "
            "(pip install espeakng-loader)"
        ) from exc
    lib = Path(espeakng_loader.get_library_path())
    data = Path(espeakng_loader.get_data_path())
    if not lib.is_file():
        raise EspeakError(f"espeak-ng library not found at {lib}")
    return lib, data


def list_variants() -> dict[str, str]:
    """Voice variants shipped with the engine (``voices/!v``), mapped to their gender.

    Returns:
        ``{variant_name: "male" | "female"}``; a variant file without a gender line counts as
        male, as the engine does.
    """
    _, data = _package_paths()
    out: dict[str, str] = {}
    for path in sorted((data / "voices" / "!v").iterdir()):
        if not path.is_file():
            continue
        gender = "male"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "gender":
                gender = "female" if parts[1].lower().startswith("f") else "male"
                break
        out[path.name] = gender
    return out


class Espeak:
    """An espeak-ng engine. Use :func:`get_engine` or :func:`fresh_engine`, not this constructor.

    Args:
        private: load a private copy of the shared library, so that this engine starts from a
            pristine state. The engine carries state from one utterance to the next (its
            pitch-flutter phase, among others), so the audio of an utterance depends on what
            the same library instance spoke before; a private copy makes a sequence of
            utterances reproducible whatever else the process has spoken.
    """

    def __init__(self, private: bool = False) -> None:
        lib_path, data_path = _package_paths()
        self._private = private
        try:
            if private:
                with tempfile.TemporaryDirectory(
                    prefix="sparse-espeak-", ignore_cleanup_errors=True
                ) as tmp:
                    copy = Path(tmp) / lib_path.name
                    shutil.copyfile(lib_path, copy)
                    lib = ctypes.CDLL(str(copy))
            else:
                lib = ctypes.CDLL(str(lib_path))
        except OSError as exc:
            raise EspeakError(f"cannot load the espeak-ng library {lib_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
        ]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        self._has_seed = hasattr(lib, "espeak_ng_SetRandSeed")
        try:  # the engine also draws voicing noise from libc's rand()
            self._libc: ctypes.CDLL | None = ctypes.CDLL(None)
            self._libc.srand.argtypes = [ctypes.c_uint]
        except (OSError, AttributeError):  # pragma: no cover - non-POSIX
            self._libc = None
        if self._has_seed:
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path).encode(),
            _INIT_PHONEME_EVENTS | _INIT_DONT_EXIT,
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (data path {data_path})")
        self.sample_rate: int = int(rate)
        self._lib: ctypes.CDLL | None = lib
        self._lock = threading.Lock()
        self._voice: str | None = None
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[PhonemeEvent] = []
        self._words: list[WordEvent] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: the C side holds it
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav, num_samples, events) -> int:  # noqa: ANN001 - ctypes callback
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                raw = bytes(ev.id.string).split(b"\0", 1)[0].decode("ascii", "replace")
                stress = raw[0] if raw[:1] in ("'", ",") else ""
                name = raw[len(stress):]
                self._phonemes.append(PhonemeEvent(name, int(ev.sample), ev.text_position, stress))
            elif ev.type == _EV_WORD:
                self._words.append(WordEvent(ev.text_position, ev.length, int(ev.sample)))
            elif ev.type in (_EV_END, _EV_MSG_TERMINATED):
                pass
            i += 1
        return 0

    def set_voice(self, name: str) -> None:
        """Select a voice by espeak name, e.g. ``"en-us"`` or ``"en-gb-scotland+f3"``."""
        if name == self._voice:
            return
        status = self._lib.espeak_SetVoiceByName(name.encode())
        if status != 0:
            raise EspeakError(f"espeak-ng has no voice {name!r} (status {status})")
        self._voice = name

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        volume: int = 100,
        word_gap: int = 0,
        seed: int = 0,
    ) -> Synthesis:
        """Speak ``text`` and return the audio with its phoneme and word events.

        Args:
            text: plain text (UTF-8); SSML and phoneme input are not enabled.
            voice: espeak voice name, optionally with a ``+variant``.
            rate: speaking rate in words per minute, 80-450.
            pitch: base pitch, 0-100 (50 is the voice's normal).
            pitch_range: intonation range, 0-100 (0 is monotone).
            volume: 0-200 (100 is normal).
            word_gap: extra pause between words, in units of 10 ms.
            seed: seed of the engine's random generator (breath noise, flutter).

        Returns:
            A :class:`Synthesis` with int16 audio of shape ``(num_samples,)``.
        """
        if not text.strip():
            raise EspeakError("cannot synthesise empty text")
        with self._lock:
            if self._lib is None:
                raise EspeakError("this engine has been closed")
            self.set_voice(voice)
            for param, value in (
                (_P_RATE, rate), (_P_PITCH, pitch), (_P_RANGE, pitch_range),
                (_P_VOLUME, volume), (_P_WORDGAP, word_gap),
            ):
                self._lib.espeak_SetParameter(param, int(value), 0)
            if self._has_seed:
                self._lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
            if self._libc is not None:
                self._libc.srand(int(seed) & 0x7FFFFFFF)
            self._chunks, self._phonemes, self._words = [], [], []
            data = text.encode("utf-8")
            status = self._lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != 0:
                raise EspeakError(f"espeak_Synth failed with status {status} for {text!r}")
            self._lib.espeak_Synchronize()
            audio = (
                np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
            )
            result = Synthesis(
                audio.astype(np.int16, copy=False), self.sample_rate,
                self._phonemes, self._words, text,
            )
            self._chunks, self._phonemes, self._words = [], [], []
        return result


    def text_to_phonemes(self, text: str, voice: str = "en-us") -> list[str]:
        """The phoneme mnemonics (stress marks removed) the engine gives ``text``, without
        synthesising audio: the same translation the synthesiser speaks, less its pauses.
        """
        sep = ord("|")
        out: list[str] = []
        with self._lock:
            if self._lib is None:
                raise EspeakError("this engine has been closed")
            self.set_voice(voice)
            fn = self._lib.espeak_TextToPhonemes
            fn.restype = ctypes.c_char_p
            fn.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            ptr = ctypes.c_char_p(ctypes.addressof(buf))
            while ptr.value:
                res = fn(ctypes.byref(ptr), _CHARS_UTF8, sep << 8)
                for word in (res or b"").decode("utf-8", "replace").split():
                    for ph in word.split("|"):
                        ph = ph.lstrip("',")
                        if ph:
                            out.append(ph)
        return out

    def close(self) -> None:
        """Terminate a private engine and unload its library copy (no-op for the shared one)."""
        if not self._private or self._lib is None:
            return
        with self._lock:
            self._lib.espeak_Terminate()
            handle = self._lib._handle
            self._lib = None
            try:
                import _ctypes

                _ctypes.dlclose(handle)
            except (ImportError, AttributeError, OSError):  # pragma: no cover - non-POSIX
                pass


@contextlib.contextmanager
def fresh_engine() -> Iterator[Espeak]:
    """A private engine in a pristine state, closed on exit (see :class:`Espeak`)."""
    engine = Espeak(private=True)
    try:
        yield engine
    finally:
        engine.close()


_ENGINE: Espeak | None = None
_ENGINE_LOCK = threading.Lock()


def get_engine() -> Espeak:
    """Return this process's engine, initialising it on first use."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = Espeak()
        return _ENGINE
