"""Hand-made miniature corpora in the real layouts, written by the tests into temporary folders.

Nothing here is committed as binary data: every file is generated on the fly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(seconds: float, freq: float = 440.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(path: Path, x: np.ndarray, sr: int = SR, fmt: str = "WAV") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, format=fmt, subtype="PCM_16")


def write_corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio data at all" * 3)


def write_empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


# (phone, duration in samples) of a short TIMIT-like utterance; "q" is deleted by folding,
# closures fold to "sil", "ix" to "ih" (39) but stays "ix" (48)
TIMIT_PHONES = [
    ("h#", 1600), ("sh", 1200), ("ix", 800), ("q", 400), ("hv", 900), ("eh", 1500),
    ("dcl", 500), ("jh", 900), ("axr", 1100), ("pau", 800), ("tcl", 400), ("t", 700),
    ("h#", 1200),
]


def _timit_utt(folder: Path, utt: str, upper: bool, fmt: str = "WAV") -> int:
    name = utt.upper() if upper else utt
    ext = (lambda e: e.upper()) if upper else (lambda e: e)
    total = sum(d for _, d in TIMIT_PHONES)
    write_audio(folder / f"{name}.{ext('wav')}", tone(total / SR, 300.0), fmt=fmt)
    lines, t = [], 0
    for ph, d in TIMIT_PHONES:
        lines.append(f"{t} {t + d} {ph}")
        t += d
    (folder / f"{name}.{ext('phn')}").write_text("\n".join(lines) + "\n")
    (folder / f"{name}.{ext('wrd')}").write_text("1600 4400 she\n4400 8000 had\n")
    (folder / f"{name}.{ext('txt')}").write_text(f"0 {total} She had.\n")
    return total


def make_timit_tree(root: Path, upper: bool = False) -> Path:
    """A TIMIT-shaped tree.

    train: dr1/fcjf0 (sa1 + si1027 + sx37), dr2/marc0 (si1 + sx2)  -> 4 non-SA utterances;
    test:  dr1/faks0 (dev speaker, 2 utts), dr1/mdab0 (core test, 2 utts),
           dr3/mzzz0 (neither: only in test_full, 1 utt).
    With ``upper`` the names are upper case and the audio is NIST SPHERE, as on the LDC disc.
    """
    fmt = "NIST" if upper else "WAV"

    def d(*parts: str) -> Path:
        p = root.joinpath(*(x.upper() if upper else x for x in parts))
        p.mkdir(parents=True, exist_ok=True)
        return p

    for utt in ("sa1", "si1027", "sx37"):
        _timit_utt(d("train", "dr1", "fcjf0"), utt, upper, fmt)
    for utt in ("si1", "sx2"):
        _timit_utt(d("train", "dr2", "marc0"), utt, upper, fmt)
    for utt in ("sa2", "si3", "sx4"):
        _timit_utt(d("test", "dr1", "faks0"), utt, upper, fmt)
    for utt in ("si5", "sx6"):
        _timit_utt(d("test", "dr1", "mdab0"), utt, upper, fmt)
    _timit_utt(d("test", "dr3", "mzzz0"), "si7", upper, fmt)
    return root


SC_WORDS = ("yes", "no", "cat", "marvin")


def make_speech_commands_tree(root: Path) -> Path:
    """A Speech Commands tree: 4 words x 3 speakers x 2 takes; speaker ``bbbb2222`` is the
    validation speaker, ``cccc3333`` the test speaker; two background noise files."""
    rels = {"train": [], "valid": [], "test": []}
    for wi, word in enumerate(SC_WORDS):
        for split, spk in (("train", "aaaa1111"), ("valid", "bbbb2222"), ("test", "cccc3333")):
            for k in range(2):
                rel = f"{word}/{spk}_nohash_{k}.wav"
                # clips shorter than 1 s, as many real ones are
                write_audio(root / rel, tone(0.6 + 0.1 * k, 200.0 + 100 * wi))
                rels[split].append(rel)
    (root / "validation_list.txt").write_text("\n".join(rels["valid"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(rels["test"]) + "\n")
    bg = root / "_background_noise_"
    rng = np.random.default_rng(0)
    write_audio(bg / "white_noise.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32))
    write_audio(bg / "hum.wav", tone(2.5, 50.0))
    return root


def make_shd_file(path: Path, n: int = 6, channels: int = 700, seed: int = 0) -> dict:
    """An SHD-format HDF5 file; returns what it wrote (times, units, labels, speakers)."""
    import h5py

    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        k = 50 + 10 * i
        times.append(np.sort(rng.uniform(0.0, 0.3 + 0.1 * i, k)).astype(np.float32))
        units.append(rng.integers(0, channels, k).astype(np.uint16))
    labels = (np.arange(n) % 3).astype(np.uint16)
    speakers = (np.arange(n) // 2).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        ft = h5py.vlen_dtype(np.float32)
        fu = h5py.vlen_dtype(np.uint16)
        dt = f.create_dataset("spikes/times", (n,), dtype=ft)
        du = f.create_dataset("spikes/units", (n,), dtype=fu)
        for i in range(n):
            dt[i] = times[i]
            du[i] = units[i]
        f.create_dataset("labels", data=labels)
        f.create_dataset("extra/speaker", data=speakers)
        f.create_dataset("extra/keys", data=np.array([b"zero", b"one", b"two"]))
    return {"times": times, "units": units, "labels": labels, "speakers": speakers}


def make_pattern_folder(root: Path) -> Path:
    """A flat folder of ``<speaker>_<digit>_<take>.wav`` clips (FSDD-like): 5 speakers x
    3 digits x 2 takes, plus a README that must be ignored."""
    speakers = ("george", "jackson", "lucas", "nicolas", "theo")
    for s in speakers:
        for digit in range(3):
            for take in range(2):
                write_audio(root / f"{s}_{digit}_{take}.wav", tone(0.3, 200.0 + 50 * digit))
    (root / "README.md").write_text("not audio\n")
    return root
