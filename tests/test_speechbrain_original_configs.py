"""The original SPARSE code's two SpeechBrain files (tests/data_fixtures/original/, unchanged)
run by the TIMIT recipe with the real SpeechBrain: timit_train.yaml trains through
run_training.py on the tiny synthesised corpus (sizes made tiny on the command line, the noise
download switched off), timit_analysis.yaml analyses the result through run_analysis.py, and
each analysis key changes what lands in plots_folder."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
ORIGINAL = REPO / "tests" / "data_fixtures" / "original"
FOLDER = REPO / "recipes" / "speechbrain" / "TIMIT"
# the original's encoder, narrower; three cortex layers, so amplitude_layer: 3 stays valid
SIZES = ["--n_mels=20", "--auditory_channels=[4]", "--auditory_kernel_size=[3,5]",
         "--auditory_frequency_stride=[2]", "--cortex_layer_sizes=[16,16,16]",
         "--phoneme_num_layers=1", "--phoneme_features=16", "--num_workers=0"]
PNG = b"\x89PNG\r\n\x1a\n"


def _call(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=FOLDER, env=env, capture_output=True,
                          text=True, timeout=600)


def _ok(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    r = _call(args, env)
    assert r.returncode == 0, f"{args[0]} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r


def _analyse(trained: tuple[Path, Path], env: dict[str, str], *extra: str
             ) -> subprocess.CompletedProcess:
    data, output = trained
    given = {x.split("=", 1)[0] for x in extra}
    sizes = [x for x in SIZES if x.split("=", 1)[0] not in given]
    return _call(["run_analysis.py", str(ORIGINAL / "timit_analysis.yaml"),
                  f"--data_folder={data}", f"--output_folder={output}", *sizes, *extra], env)


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def trained(corpus, speechbrain_env, tmp_path_factory) -> tuple[Path, Path]:
    """One epoch of the original's timit_train.yaml, without the noise download."""
    output = tmp_path_factory.mktemp("original") / "results"
    r = _ok(["run_training.py", str(ORIGINAL / "timit_train.yaml"),
             f"--data_folder={corpus / 'timit'}", f"--output_folder={output}",
             "--number_of_epochs=1", "--batch_size=4", "--noprogressbar",
             "--skip_noise_augmentation=True", *SIZES], speechbrain_env)
    assert "training without the noise augmentation" in r.stdout
    return corpus / "timit", output


def test_original_training_file_trains_and_evaluates(trained):
    _, output = trained
    ckpt = sorted((output / "save").glob("CKPT+*"))[-1]
    # the checkpointer keeps the original's names, so the original's analysis file finds them
    for name in ("model", "classifier", "normalizer", "scheduler", "counter"):
        assert (ckpt / f"{name}.ckpt").is_file(), name
    state = torch.load(ckpt / "model.ckpt", map_location="cpu", weights_only=True)
    assert state["front.cortex.layers.2.linear.weight"].shape == (16, 16)
    log = (output / "train_log.txt").read_text()
    assert "valid PER" in log and "test PER" in log
    assert "train rate_cortex3_hz" in log  # the regulariser's rates (regularize_firing_rate)
    assert "PER stats:" in (output / "test_wer.txt").read_text()  # test_wer_file
    labels = (output / "save" / "label_encoder.txt").read_text().split("====")[0]
    assert labels.count("=>") == 40  # vocab_size: blank + 39 phones


def test_original_training_file_without_the_noise_download(corpus, speechbrain_env,
                                                           tmp_path):
    args = ["run_training.py", str(ORIGINAL / "timit_train.yaml"),
            f"--data_folder={corpus / 'timit'}", f"--output_folder={tmp_path / 'out'}",
            f"--data_folder_noise={tmp_path / 'noise'}", *SIZES]
    # a download that cannot succeed (a missing archive: no network needed to fail)
    r = _call([*args, f"--NOISE_DATASET_URL={tmp_path / 'missing' / 'noises.zip'}"],
              speechbrain_env)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    for words in ("NOISE_DATASET_URL", "data_folder_noise", "noise_annotation",
                  "--skip_noise_augmentation=True", "noises.zip"):
        assert words in r.stderr, words
    assert not (tmp_path / "noise").exists()  # no empty folder left to block a later unpack


def test_original_analysis_file_writes_its_figures(trained, speechbrain_env):
    _, output = trained
    before = (output / "hyperparams.yaml").read_text()
    r = _analyse(trained, speechbrain_env, "--num_utterances_pac_analysis=2")
    assert r.returncode == 0, r.stderr[-5000:]
    plots = output / "plots"  # plots_folder: <output_folder>/plots
    # utterance_id: 0; phase_layer 0 x amplitude_layer 3, theta 4-8 Hz x gamma 30-80 Hz
    pac = "pac_layer0_3_freq4_8_30_80_utt0"
    expected = {"parameters.png", "weights.png", "spikes_ordered_utt0.png", "rates_utt0.png",
                "filtered_population_signal_utt0.png", f"{pac}/pac.png", f"{pac}/phase_freq.png"}
    assert _files(plots) == expected  # run_pac_analysis: False: no report
    for name in expected:
        data = (plots / name).read_bytes()
        assert data[:8] == PNG and len(data) > 1000, name
    assert f"analysis written to {plots}" in r.stdout
    # the analysis leaves the training's saved settings alone
    assert (output / "hyperparams.yaml").read_text() == before


def test_original_analysis_keys_switch_what_is_written(trained, speechbrain_env, tmp_path):
    plots = tmp_path / "switched"
    r = _analyse(trained, speechbrain_env, f"--plots_folder={plots}", "--utterance_id=-1",
                 "--plot_spikes=False", "--plot_weights=False", "--plot_filtered_population=False",
                 "--phase_layer=1", "--amplitude_layer=2", "--phase_freq_range=[8,13]",
                 "--phase_band_name=Alpha", "--run_pac_analysis=True",
                 "--num_utterances_pac_analysis=1")
    assert r.returncode == 0, r.stderr[-5000:]
    pac = "pac_layer1_2_freq8_13_30_80_gaussian_noise"  # utterance_id -1: the noise input
    assert _files(plots) == {"parameters.png", "rates_gaussian_noise.png", f"{pac}/pac.png",
                             f"{pac}/phase_freq.png", "pac_analysis.txt", "pac_results.csv",
                             "pac_results.json"}
    # run_pac_analysis: every population pair and band pair of the first
    # num_utterances_pac_analysis utterances, among them the keys' layers and bands
    rows = list(csv.DictReader(open(plots / "pac_results.csv", newline="")))
    assert {r["utterance_id"] for r in rows} == {"utt0"}
    pairs = {(r["phase_population"], r["amplitude_population"]) for r in rows}
    assert {("nerve", "cortex3"), ("cortex1", "cortex2"), ("input", "cortex3")} <= pairs
    bands = {(r["phase_band"], r["amplitude_band"]) for r in rows
             if (r["phase_population"], r["amplitude_population"]) == ("cortex1", "cortex2")}
    assert {("alpha", "low_gamma"), ("theta", "low_gamma")} <= bands
    text = (plots / "pac_analysis.txt").read_text()
    assert "populations:        input, nerve, cortex1, cortex2, cortex3, all" in text


def _load_analysis(trained: tuple[Path, Path], **overrides) -> dict:
    """The original's analysis file loaded here, with the tiny sizes and ``overrides``."""
    from hyperpyyaml import load_hyperpyyaml

    data, output = trained
    sizes = {x[2:].split("=", 1)[0]: x.split("=", 1)[1] for x in SIZES}
    given = {**sizes, "data_folder": str(data), "output_folder": str(output),
             "num_utterances_pac_analysis": "1", **overrides}
    text = "\n".join(f"{k}: {v}" for k, v in given.items())
    with open(ORIGINAL / "timit_analysis.yaml", encoding="utf-8") as f:
        return load_hyperpyyaml(f, text)


def test_original_analysis_save_plots_and_bad_values(trained, speechbrain_env, tmp_path):
    from sparse.integrations.speechbrain import RecipeError
    from sparse.integrations.speechbrain_original import analyze_original

    # save_plots: False makes the figures and writes none
    quiet = tmp_path / "quiet"
    done = analyze_original(_load_analysis(trained, plots_folder=str(quiet),
                                           save_plots="False"))
    assert "spikes" in done["figures"] and "pac" in done["figures"]
    assert _files(quiet) == set() and done["files"] == []
    with pytest.raises(RecipeError, match="amplitude_layer: 7 is not a layer of the encoder"):
        analyze_original(_load_analysis(trained, amplitude_layer="7",
                                        plots_folder=str(tmp_path / "a")))
    with pytest.raises(RecipeError, match="phase_freq_range: \\[8, 4\\] must be"):
        analyze_original(_load_analysis(trained, phase_freq_range="[8, 4]",
                                        plots_folder=str(tmp_path / "b")))
    with pytest.raises(RecipeError, match="utterance_id: 5 is not an element"):
        analyze_original(_load_analysis(trained, utterance_id="5",
                                        plots_folder=str(tmp_path / "c")))
    # encoder parameters that do not match the trained model
    with pytest.raises(RecipeError, match="must be those of the trained model"):
        analyze_original(_load_analysis(trained, cortex_layer_sizes="[8, 8, 8]",
                                        plots_folder=str(tmp_path / "d")))


def test_noise_switch_is_taken_out_of_the_overrides():
    from sparse.integrations.speechbrain import RecipeError
    from sparse.integrations.speechbrain_original import noise_switch, pop_override

    value, rest = pop_override("data_folder: /x\nskip_noise_augmentation: True\nlr: 0.1",
                               "skip_noise_augmentation")
    assert value is True and rest == "data_folder: /x\nlr: 0.1"
    assert pop_override("lr: 0.1", "skip_noise_augmentation") == (None, "lr: 0.1")
    assert noise_switch(None) is False and noise_switch(True) is True
    with pytest.raises(RecipeError, match="takes True or False"):
        noise_switch("maybe")


def test_this_recipes_analysis_file_reads_the_original_training(trained, speechbrain_env,
                                                                tmp_path):
    """hparams/timit_analysis.yaml rebuilds the model from the training's saved settings; a
    run of the original's training file calls the encoder `model`."""
    from sparse.integrations.speechbrain import analyze_recipe

    _, output = trained
    analyze_recipe({"output_folder": str(output), "analysis_folder": str(tmp_path),
                              "num_utterances": 1, "n_shuffles": 20, "plot_utterances": 1,
                              "progress": False}, corpus="timit", min_key="PER")
    summary = json.loads((tmp_path / "analysis_summary.json").read_text())
    assert summary["dt_ms"] == 2.0 and len(summary["utterances"]) == 1
    assert (tmp_path / "pac_analysis.txt").is_file() and (tmp_path / "index.html").is_file()
