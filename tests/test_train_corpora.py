"""The corpus-format registry: a format registered in one line is validated by the config and
opened by the task; the shipped formats open the readers they did before."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparse.train.config import ConfigError, load_config
from sparse.train.corpora import CORPUS_FORMATS, CorpusFormat, format_of, formats_for, open_corpus
from sparse.train.tasks import TASKS, task_of

OPENED: list[tuple[str, Path, str]] = []


def _opener(cfg, root: Path, split: str) -> dict:
    """A stand-in reader: what a new corpus module's opener would return."""
    OPENED.append((cfg.task, root, split))
    return {"root": root, "split": split}


def test_every_task_has_a_default_format_and_every_format_a_task():
    for name in TASKS:
        assert formats_for(name), f"task {name!r} has no corpus format"
    for name, fmt in CORPUS_FORMATS.items():
        assert fmt.task in TASKS, name
    assert [formats_for(t)[0] for t in ("kws", "asr", "spikes")] == [
        "speech_commands", "timit", "shd"]


def test_a_registered_format_is_accepted_and_opened(monkeypatch, tmp_path):
    monkeypatch.setitem(CORPUS_FORMATS, "my_phones",
                        CorpusFormat("asr", f"{__name__}:_opener", "a folder of my phones"))
    cfg = load_config(None, ["task=asr", f"data.corpus={tmp_path}",
                             "data.corpus_format=my_phones"])
    assert format_of(cfg).description == "a folder of my phones"
    OPENED.clear()
    reader = task_of(cfg).dataset(cfg, tmp_path, "valid")
    assert reader == {"root": tmp_path, "split": "valid"}
    assert OPENED == [("asr", tmp_path, "valid")]


@pytest.mark.parametrize("sets, match", [
    (["data.corpus_format=timit"], "data.corpus_format: 'timit'.*task 'kws' reads "
                                   "'speech_commands'"),
    (["task=asr", "data.corpus_format=nope", "data.corpus=/tmp"], "task 'asr' reads 'timit'"),
    (["task=asr", "data.corpus_format=my_phones"], "data.corpus 'synth' is in the task's own "
                                                   "format 'timit'"),
])
def test_a_format_the_task_cannot_read_names_the_ones_it_can(monkeypatch, sets, match):
    monkeypatch.setitem(CORPUS_FORMATS, "my_phones",
                        CorpusFormat("asr", f"{__name__}:_opener", "a folder of my phones"))
    with pytest.raises(ConfigError, match=match):
        load_config(None, sets)


def test_default_format_opens_the_tasks_reader(corpus):
    from sparse.data.timit import TimitDataset

    cfg = load_config(None, ["task=asr", "features.sample_rate=16000"])
    timit = corpus / "timit"
    reader = task_of(cfg).dataset(cfg, timit, "train")
    assert isinstance(reader, TimitDataset)
    direct = TimitDataset(timit, split="train", phone_set=39)
    assert [e.id for e in reader.manifest] == [e.id for e in direct.manifest]
    assert open_corpus(cfg, timit, "test").split == "test"


def _recording_timit(cfg, root: Path, split: str):
    """A new format's opener: here TIMIT's reader, so that the run can be compared."""
    from sparse.data.timit import TimitDataset

    OPENED.append((cfg.task, root, split))
    return TimitDataset(root, split=split, phone_set=cfg.data.phone_set,
                        sample_rate=cfg.features.sample_rate)


def test_training_and_evaluation_read_a_registered_format(monkeypatch, tmp_path, corpus):
    """One registry line is all a new corpus needs: `sparse train` and `sparse evaluate`
    open every split through its opener, and the run folder remembers the format."""
    import yaml

    from sparse.cli import main

    from .test_train_run import tiny

    timit = corpus / "timit"
    monkeypatch.setitem(CORPUS_FORMATS, "my_phones",
                        CorpusFormat("asr", f"{__name__}:_recording_timit", "my phones"))
    monkeypatch.setenv("SPARSE_DATA_DIR", str(tmp_path / "cache"))
    OPENED.clear()
    run = tmp_path / "run"
    sets = [s for s in tiny(tmp_path, "asr") if not s.startswith("data.synth")]
    args = [f"--set={s}" for s in [*sets, f"data.corpus={timit}", "data.corpus_format=my_phones",
                                   "train.epochs=1", "data.limit_train=8", "data.limit_eval=4"]]
    assert main(["train", *args, "--out", str(run)]) == 0
    assert {split for _, _, split in OPENED} >= {"train", "valid"}
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["data"]["corpus_format"] == "my_phones"
    OPENED.clear()
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    assert OPENED and all(s == "test" and r == timit for _, r, s in OPENED)
