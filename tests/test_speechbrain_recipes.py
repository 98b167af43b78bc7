"""The SpeechBrain recipes (recipes/speechbrain/) with the real SpeechBrain: one short epoch of
run_training.py on the tiny synthesised corpus, then run_analysis.py on its checkpoint, from
the repository and from a copy in a folder shaped like SpeechBrain's recipes/TIMIT/ASR/CTC/
(the original SPARSE code's instructions)."""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparse.integrations.speechbrain import (
    ANNOTATION_FILES,
    RecipeError,
    prepare_speech_commands,
    prepare_timit,
)

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "speechbrain"

# a small encoder: the recipes' shapes, narrower
SMALL = ["--n_mels=20", "--auditory_channels=[4]", "--auditory_kernel_size=[3,5]",
         "--auditory_frequency_stride=[2]", "--cortex_layer_sizes=[24,24]",
         "--cortex_sfa_portions=[0.5,0.5]", "--cortex_rnn_portions=[0.5,0.5]",
         "--cortex_feedforward_portions=[1.0,1.0]", "--num_threads=1", "--noprogressbar"]
SMALL_ASR = [*SMALL, "--phoneme_num_layers=1", "--phoneme_features=24", "--batch_size=4"]
ANALYSIS = ["--num_utterances=3", "--n_shuffles=40", "--plot_utterances=1",
            "--progress=False"]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
         ) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r


def _log_number(log: str, stage: str, key: str) -> float:
    """The last ``<stage> <key>: <value>`` of a SpeechBrain train log."""
    found = re.findall(rf"{stage} {key}: ([-0-9.e+]+)", log)
    assert found, f"no '{stage} {key}' in the train log:\n{log}"
    return float(found[-1])


def _check_checkpoint(output: Path) -> Path:
    ckpts = sorted((output / "save").glob("CKPT+*"))
    assert len(ckpts) >= 1, list((output / "save").iterdir())
    ckpt = ckpts[-1]
    state = torch.load(ckpt / "encoder.ckpt", map_location="cpu", weights_only=True)
    assert any(k.endswith("tau_u") for k in state), sorted(state)[:5]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert (ckpt / "optimizer.ckpt").is_file() and (ckpt / "normalizer.ckpt").is_file()
    return ckpt


def _check_analysis(out: Path, n_utterances: int) -> dict:
    """Every output `sparse analyze` writes exists and agrees with the others."""
    summary = json.loads((out / "analysis_summary.json").read_text())
    assert len(summary["utterances"]) == n_utterances
    figures = {name: out / rel for name, rel in summary["figures"].items()}
    for name in ("parameters", "weights"):
        assert name in figures, summary["messages"]
    assert any(name.startswith("raster ") for name in figures)
    for name, path in figures.items():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000, name
    page = (out / "index.html").read_text()
    for path in figures.values():
        assert f"src='{path.relative_to(out).as_posix()}'" in page
    text = (out / "pac_analysis.txt").read_text()
    rows = list(csv.DictReader(open(out / "pac_results.csv", newline="")))
    data = json.loads((out / "pac_results.json").read_text())
    tests_line = next(x for x in text.splitlines() if x.startswith("tests "))
    counts = [sum(r["set"] == label for r in rows) for label in ("model", "noise control")]
    assert tests_line.split()[1:] == [str(c) for c in counts]
    assert [s["summary"]["n_tests"] for s in data["sets"]] == counts
    return summary


@pytest.mark.parametrize("where", ["repository", "speechbrain-layout"])
def test_timit_recipe_trains_evaluates_and_analyses(where, corpus, speechbrain_env, tmp_path):
    if where == "repository":
        folder = RECIPES / "TIMIT"
        hop = "2.0"  # 500 Hz: the gamma bands are below Nyquist, so PAC tests do run
    else:  # the original SPARSE code's instructions: the files copied into SpeechBrain's
        # TIMIT CTC recipe
        folder = tmp_path / "speechbrain" / "recipes" / "TIMIT" / "ASR" / "CTC"
        (folder / "hparams").mkdir(parents=True)
        for name in ("run_training.py", "run_analysis.py", "hparams/timit_train.yaml",
                     "hparams/timit_analysis.yaml"):
            shutil.copy(RECIPES / "TIMIT" / name, folder / name)
        hop = "10.0"
    output = tmp_path / "results"
    r = _run(["run_training.py", "hparams/timit_train.yaml", f"--data_folder={corpus / 'timit'}",
              f"--output_folder={output}", "--number_of_epochs=1", f"--hop_length_ms={hop}",
              "--phoneme_ctc_rate_hz=50", *SMALL_ASR], folder, speechbrain_env)
    _check_checkpoint(output)
    log = (output / "train_log.txt").read_text()
    valid_per, test_per = _log_number(log, "valid", "PER"), _log_number(log, "test", "PER")
    assert 0 <= valid_per <= 200 and 0 <= test_per <= 200
    assert _log_number(log, "train", "rate_cortex2_hz") > 0  # the rates are logged
    wer = (output / "wer_test.txt").read_text()
    assert "PER stats:" in wer
    wer_value = float(re.search(r"%WER ([0-9.]+)", wer).group(1))
    assert wer_value == pytest.approx(test_per, abs=0.01)
    assert f"test PER {test_per:.2f} %" in r.stdout
    # the prepared annotation files: dev and test are the standard speaker sets of the corpus
    dev = json.loads((output / "save" / "dev.json").read_text())
    assert dev and all(e["wav"].startswith("{data_root}/test/") for e in dev.values())

    r = _run(["run_analysis.py", "hparams/timit_analysis.yaml", f"--output_folder={output}",
              *ANALYSIS], folder, speechbrain_env)
    summary = _check_analysis(output / "analysis", 3)
    assert summary["dt_ms"] == float(hop)
    if hop == "2.0":  # gamma fits at 500 Hz: coupling was tested
        rows = list(csv.DictReader(open(output / "analysis" / "pac_results.csv", newline="")))
        assert any(r["amplitude_band"] == "low_gamma" for r in rows), summary["messages"]
    assert f"analysis written to {output / 'analysis'}" in r.stdout


def test_keyword_recipe_trains_evaluates_and_analyses(corpus, speechbrain_env, tmp_path):
    # from a copy of the recipe's folder alone: it needs nothing of the repository but the
    # installed sparse package (the TIMIT test runs its copy inside a SpeechBrain layout)
    folder = tmp_path / "SpeechCommands"
    shutil.copytree(RECIPES / "SpeechCommands", folder)
    output = tmp_path / "results"
    r = _run(["run_training.py", "hparams/kws_train.yaml",
              f"--data_folder={corpus / 'speech_commands'}", f"--output_folder={output}",
              "--number_of_epochs=1", "--batch_size=16", *SMALL], folder, speechbrain_env)
    _check_checkpoint(output)
    log = (output / "train_log.txt").read_text()
    accuracy = _log_number(log, "test", "accuracy")
    assert 0 <= accuracy <= 100
    results = (output / "classification_test.txt").read_text()
    assert results.startswith(f"accuracy: {accuracy:.2f} % on 35 clips")
    assert "Confusion" in results
    assert f"test accuracy {accuracy:.2f} %" in r.stdout

    r = _run(["run_analysis.py", "hparams/kws_analysis.yaml", f"--output_folder={output}",
              *ANALYSIS], folder, speechbrain_env)
    _check_analysis(output / "analysis", 3)


def _top_level_imports(script: Path) -> set[str]:
    """The top-level names a script imports; relative imports fail the test."""
    names = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"{script.name}: a relative import"
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("recipe", ["TIMIT", "SpeechCommands"])
def test_a_recipe_folder_runs_copied_alone(recipe, speechbrain_env, tmp_path):
    """A recipe folder copied alone imports only installed packages (the shared parts come
    from sparse.integrations.speechbrain, never from the other recipe) and starts."""
    folder = tmp_path / recipe
    shutil.copytree(RECIPES / recipe, folder)
    allowed = {"sparse", "speechbrain", "torch", "hyperpyyaml", *sys.stdlib_module_names}
    for script in ("run_training.py", "run_analysis.py"):
        imported = _top_level_imports(folder / script)
        assert "sparse" in imported and imported <= allowed, sorted(imported - allowed)
        assert "sys.path" not in (folder / script).read_text(encoding="utf-8")
        r = _run([script, "--help"], folder, speechbrain_env)
        assert r.stdout.startswith(f"usage: {script}"), r.stdout[:500]


def test_read_arguments_takes_the_recipe_switches_out_before_loading(speechbrain_env,
                                                                     tmp_path):
    from sparse.integrations.speechbrain import RecipeError, read_arguments

    hparams = tmp_path / "h.yaml"
    hparams.write_text("lr: 0.1\nname: a\n")

    def on_off(value):
        if value not in (None, True, False):
            raise RecipeError("takes True or False")
        return bool(value)

    args = read_arguments([str(hparams), "--lr=0.5", "--my_switch=True"],
                          switches={"my_switch": on_off})
    assert dict(args.hparams) == {"lr": 0.5, "name": "a"}  # hyperpyyaml saw no my_switch
    assert args.switches == {"my_switch": True} and args.hparams_file == str(hparams)
    assert "my_switch" not in args.overrides and "lr: 0.5" in args.overrides
    assert read_arguments([str(hparams)], switches={"my_switch": on_off}).switches == {
        "my_switch": False}
    # the switch is checked before the file is read: a missing file is not what stops it
    with pytest.raises(RecipeError, match="takes True or False"):
        read_arguments([str(tmp_path / "missing.yaml"), "--my_switch=maybe"],
                       switches={"my_switch": on_off})


def test_former_analysis_keys_still_work_and_warn(speechbrain_env, tmp_path):
    """``n_surrogates`` and ``surrogate_method`` (the former names of ``n_shuffles`` and
    ``shuffle_method``) on the command line or in an hparams file, for one release."""
    from sparse.integrations.speechbrain import RecipeError, analyze_recipe, read_arguments

    new = tmp_path / "new.yaml"
    new.write_text("n_shuffles: 1000\nshuffle_method: cut_reverse\n")
    with pytest.warns(FutureWarning, match="--n_surrogates is deprecated; use --n_shuffles"):
        args = read_arguments([str(new), "--n_surrogates=40"])
    assert dict(args.hparams) == {"n_shuffles": 40, "shuffle_method": "cut_reverse"}
    old = tmp_path / "old.yaml"  # a file written before the rename takes its own keys
    old.write_text("n_surrogates: 1000\n")
    assert dict(read_arguments([str(old), "--n_surrogates=40"]).hparams) == {"n_surrogates": 40}
    missing = {"output_folder": str(tmp_path / "no_run"), "analysis_folder": str(tmp_path)}
    with pytest.warns(FutureWarning, match="hparams key 'surrogate_method' is deprecated; use "
                                           "hparams key 'shuffle_method'"), \
            pytest.raises(RecipeError, match="hyperparams.yaml not found"):
        analyze_recipe({**missing, "surrogate_method": "circular_shift"}, corpus="timit")
    with pytest.raises(RecipeError, match="give only n_shuffles"):
        analyze_recipe({**missing, "n_surrogates": 5, "n_shuffles": 5}, corpus="timit")


def test_keyword_recipe_trains_under_torchrun_on_cpu(corpus, speechbrain_env, tmp_path):
    """Two CPU processes (gloo), as the recipe README says: SpeechBrain's own wrapping would
    turn the BatchNorms into SyncBatchNorm, which refuses CPU modules."""
    folder = RECIPES / "SpeechCommands"
    output = tmp_path / "results"
    r = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
              "run_training.py", "hparams/kws_train.yaml",
              f"--data_folder={corpus / 'speech_commands'}", f"--output_folder={output}",
              "--number_of_epochs=1", "--batch_size=8", "--distributed_backend=gloo", *SMALL],
             folder, speechbrain_env)
    assert "SyncBatchNorm" not in r.stderr
    _check_checkpoint(output)
    log = (output / "train_log.txt").read_text()
    assert 0 <= _log_number(log, "test", "accuracy") <= 100
    assert log.count("epoch: 1,") == 1  # one process writes the log


def test_keyword_recipe_12_class_task_and_wrong_class_count(corpus, speechbrain_env, tmp_path):
    folder = RECIPES / "SpeechCommands"
    args = ["run_training.py", "hparams/kws_train.yaml",
            f"--data_folder={corpus / 'speech_commands'}", "--kws_task=12",
            "--number_of_epochs=1", "--batch_size=16", *SMALL]
    bad = subprocess.run([sys.executable, *args, f"--output_folder={tmp_path / 'bad'}"],
                         cwd=folder, env=speechbrain_env, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode != 0
    assert "has 12 classes for kws_task=12, but num_classes is 35" in bad.stderr
    output = tmp_path / "twelve"
    _run([*args, "--num_classes=12", f"--output_folder={output}"], folder, speechbrain_env)
    labels = (output / "save" / "label_encoder.txt").read_text()
    assert "'_silence_'" in labels and "'_unknown_'" in labels
    test = json.loads((output / "save" / "test.json").read_text())
    silence = [e for e in test.values() if e["label"] == "_silence_"]
    assert silence and all(e["stop"] > e["start"] >= 0 for e in silence)


@pytest.mark.parametrize("recipe,hparams", [("TIMIT", "hparams/timit_train.yaml"),
                                             ("SpeechCommands", "hparams/kws_train.yaml")])
def test_a_missing_corpus_is_one_paragraph_and_exit_2(recipe, hparams, speechbrain_env,
                                                      tmp_path):
    missing = tmp_path / "no-such-corpus"
    r = subprocess.run([sys.executable, "run_training.py", hparams, f"--data_folder={missing}",
                        f"--output_folder={tmp_path / 'out'}", *SMALL],
                       cwd=RECIPES / recipe, env=speechbrain_env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and str(missing) in r.stderr, r.stderr[-3000:]


# ------------------------------------------------------- preparation (no SpeechBrain needed)


def test_prepare_timit_writes_relocatable_annotations(corpus, tmp_path):
    from sparse.data.timit import TimitDataset

    prepared = prepare_timit(corpus / "timit", tmp_path / "save")
    assert len(prepared.labels) == 39 and "sil" in prepared.labels
    for split, name in ANNOTATION_FILES.items():
        entries = json.loads((tmp_path / "save" / name).read_text())
        dataset = TimitDataset(corpus / "timit", split=split)
        assert sorted(entries) == sorted(e.id for e in dataset.manifest)
        for e in dataset.manifest:
            entry = entries[e.id]
            path = entry["wav"].format_map({"data_root": str(corpus / "timit")})
            assert Path(path).resolve() == Path(e.path).resolve()
            assert entry["phn"].split() == list(e.phones)
            assert entry["duration"] == pytest.approx(e.duration, abs=1e-4)
    # the same options reuse the files; other options rewrite them
    stamp = (tmp_path / "save" / "train.json").stat().st_mtime_ns
    prepare_timit(corpus / "timit", tmp_path / "save")
    assert (tmp_path / "save" / "train.json").stat().st_mtime_ns == stamp
    assert len(prepare_timit(corpus / "timit", tmp_path / "save", phone_set=48).labels) == 48


def test_prepare_errors_name_the_problem(corpus, tmp_path):
    with pytest.raises(RecipeError, match="does not exist or is not a folder"):
        prepare_timit(tmp_path / "nowhere", tmp_path / "save")
    with pytest.raises(RecipeError, match="skip_prep is set but"):
        prepare_speech_commands(corpus / "speech_commands", tmp_path / "empty", skip_prep=True)
    prepared = prepare_speech_commands(corpus / "speech_commands", tmp_path / "kws")
    assert len(prepared.labels) == 35
    again = prepare_speech_commands(corpus / "speech_commands", tmp_path / "kws",
                                    skip_prep=True)
    assert again.labels == prepared.labels


def test_the_core_does_not_import_speechbrain():
    code = ("import sys, sparse, sparse.snn, sparse.encoder_asr, sparse.encoder_kws, "
            "sparse.features, sparse.data, sparse.train.cli, sparse.analysis.cli, sparse.cli, "
            "sparse.integrations.speechbrain; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('speechbrain', 'hyperpyyaml', 'torchaudio')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
