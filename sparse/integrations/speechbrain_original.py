"""The original SPARSE code's SpeechBrain configuration files, run by the TIMIT recipe.

``recipes/speechbrain/TIMIT/run_training.py`` and ``run_analysis.py`` accept the original's
``timit_train.yaml`` and ``timit_analysis.yaml`` unchanged (beside this project's own files):

* training: :func:`adapt_original_training` gives the original's keys the names the recipe's
  Brain reads (``model`` -> ``encoder``, ``classifier`` -> ``output``, ``vocab_size`` ->
  ``output_neurons``, ``test_wer_file`` -> ``wer_file``, ``regularize_firing_rate`` /
  ``reg_factor`` / ``reg_fmin_hz`` / ``reg_fmax_hz`` -> the firing-rate regulariser), and
  :func:`prepare_original_noise` gets the noise recordings of the original's ``add_noise``
  augmentation, or stops with one paragraph that names the keys when they cannot be had
  (no network) and offers ``--skip_noise_augmentation=True``;
* analysis: :func:`analyze_original` does what the original's analysis script does: it
  recovers the best checkpoint into the modules the analysis file builds, runs the encoder on
  the ``num_utterances_pac_analysis`` longest test utterances plus one Gaussian-noise input,
  and hands every analysis key to :func:`sparse.analysis.original.analyse_spikes`, which
  writes the figures (and with ``run_pac_analysis`` the PAC report) into ``plots_folder``.

SpeechBrain is imported only inside the functions.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import torch

# pop_override lives in .speechbrain (every recipe's switches); it stays importable from here
from .speechbrain import (
    RecipeError,
    _check_folder,
    frame_lengths,
    load_annotation,
    pop_override,
    prepare_timit,
)

__all__ = ["NOISE_SWITCH", "adapt_original_training", "analyze_original",
           "is_original_analysis", "is_original_training", "pop_override",
           "prepare_original_noise"]

#: The recipe's command-line switch that trains without the original's noise recordings.
NOISE_SWITCH = "skip_noise_augmentation"

# the original's analysis keys, all read by analyze_original
ANALYSIS_KEYS = ("phase_layer", "amplitude_layer", "phase_freq_range", "amplitude_freq_range",
                 "phase_band_name", "amplitude_band_name", "num_utterances_pac_analysis",
                 "utterance_id", "plot_parameters", "plot_weights", "plot_spikes",
                 "plot_rates", "plot_pac", "plot_filtered_population", "run_pac_analysis",
                 "save_plots", "plots_folder")


def is_original_training(hparams: Mapping[str, Any]) -> bool:
    """Whether ``hparams`` is laid out as the original's ``timit_train.yaml`` (modules
    ``model`` and ``classifier``) rather than this project's (``encoder`` and ``output``)."""
    return "model" in hparams and "classifier" in hparams and "encoder" not in hparams


def is_original_analysis(hparams: Mapping[str, Any]) -> bool:
    """Whether ``hparams`` is laid out as the original's ``timit_analysis.yaml``."""
    return "phase_layer" in hparams and "model" in hparams


def noise_switch(value: Any) -> bool:
    """The value given to ``--skip_noise_augmentation`` (absent: False)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RecipeError(
            f"--{NOISE_SWITCH}={value!r}: the switch takes True or False "
            f"(--{NOISE_SWITCH}=True trains without the noise recordings)")
    return value


def adapt_original_training(hparams: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Give the original's training keys the names the recipe's Brain reads (in place).

    The objects are the file's own: the checkpointer keeps the original's names for them
    (``model``, ``classifier``, ``normalizer``, ...), so the original's analysis file
    recovers them. ``regularize_firing_rate: False`` sets the regulariser's weight to 0 (the
    rates are still logged). The phones are the 39 folded ones, as SpeechBrain's TIMIT
    preparation gives them; ``uppercase`` is accepted and not needed (the corpus reader
    takes either case).
    """
    hparams["encoder"] = hparams["model"]
    hparams["output"] = hparams["classifier"]
    hparams["modules"] = {"encoder": hparams["model"], "output": hparams["classifier"],
                          "normalize": hparams["normalize"]}
    on = bool(hparams.get("regularize_firing_rate", True))
    hparams["rate_weight"] = float(hparams.get("reg_factor", 0.5)) if on else 0.0
    hparams["rate_min_hz"] = float(hparams.get("reg_fmin_hz", 0.5))
    hparams["rate_max_hz"] = float(hparams.get("reg_fmax_hz", 250.0))
    hparams["output_neurons"] = int(hparams["vocab_size"])
    hparams["wer_file"] = hparams["test_wer_file"]
    hparams.setdefault("phone_set", 39)
    hparams["augment"] = hparams.get("wav_augment") is not None
    return hparams


def _without_noise(augmenter: Any) -> Any:
    """The same SpeechBrain ``Augmenter`` without its ``AddNoise`` augmentations (the minimum
    and maximum counts are cut to what is left, as the Augmenter does itself)."""
    from speechbrain.augment.augmenter import Augmenter
    from speechbrain.augment.time_domain import AddNoise

    kept = [a for a in augmenter.augmentations.values() if not isinstance(a, AddNoise)]
    names = ("parallel_augment", "parallel_augment_fixed_bs", "concat_original",
             "min_augmentations", "max_augmentations", "shuffle_augmentations",
             "repeat_augment", "augment_start_index", "augment_end_index",
             "concat_start_index", "concat_end_index", "augment_prob")
    return Augmenter(**{n: getattr(augmenter, n) for n in names}, augmentations=kept)


def _noise_rows(csv_file: Path) -> int:
    if not csv_file.is_file():
        return 0
    lines = [x for x in csv_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    return max(len(lines) - 1, 0)  # the header


def prepare_original_noise(hparams: MutableMapping[str, Any], skip: bool) -> None:
    """Make the original's ``add_noise`` augmentation runnable, or leave it out.

    ``skip``: drop ``AddNoise`` from ``wav_augment`` (the other augmentations stay).
    Otherwise, unless ``noise_annotation`` already lists recordings, run the file's
    ``prepare_noise_data`` (SpeechBrain downloads ``NOISE_DATASET_URL`` into
    ``data_folder_noise`` and lists its .wav files in ``noise_annotation``).

    Raises:
        RecipeError: the recordings could not be had; the message names the keys, the
            failure, and the ways on (a local copy of the archive, or the switch).
    """
    augmenter = hparams.get("wav_augment")
    if augmenter is None or "prepare_noise_data" not in hparams:
        return
    if skip:
        hparams["wav_augment"] = _without_noise(augmenter)
        print(f"{NOISE_SWITCH}: training without the noise augmentation (add_noise); the "
              "other augmentations of wav_augment stay")
        return
    csv_file = Path(hparams["noise_annotation"])
    if _noise_rows(csv_file):
        return
    folder = Path(hparams["data_folder_noise"])
    existed = folder.exists()
    reason = ""
    try:
        hparams["prepare_noise_data"]()
    except Exception as e:  # urllib, zip and file errors alike: all mean "no recordings"
        reason = f"getting them failed ({type(e).__name__}: {e})"
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # an empty folder would stop a later run from unpacking
    if not reason and not _noise_rows(csv_file):
        reason = f"no .wav file was found under {folder}"
    if reason:
        raise RecipeError(
            "the noise augmentation of the original SPARSE code's training file (add_noise "
            "in wav_augment) needs the noise recordings from NOISE_DATASET_URL "
            f"({hparams.get('NOISE_DATASET_URL')}), unpacked into data_folder_noise ({folder}) "
            f"and listed in noise_annotation ({csv_file}); {reason}. Without a network, "
            "download the archive elsewhere and pass its local path with "
            "--NOISE_DATASET_URL=/path/to/noises.zip (with data_folder_noise not yet "
            f"existing), or train without the noise recordings with --{NOISE_SWITCH}=True "
            "(speed perturbation, frequency drop and chunk drop stay).")


# ---------------------------------------------------------------------------- the analysis


def _check_analysis_keys(hparams: Mapping[str, Any], n_layers: int, batch: int,
                         fs: float) -> None:
    """One paragraph naming the key, its value and why, for a value the analysis cannot use."""
    for key in ("phase_layer", "amplitude_layer"):
        v = hparams[key]
        if not isinstance(v, int) or not 0 <= v < n_layers:
            raise RecipeError(
                f"{key}: {v!r} is not a layer of the encoder: 0 is the auditory nerve, 1 to "
                f"{n_layers - 1} the cortex layers")
    for key in ("phase_freq_range", "amplitude_freq_range"):
        v = hparams[key]
        ok = (isinstance(v, (list, tuple)) and len(v) == 2
              and all(isinstance(x, (int, float)) for x in v) and 0 < v[0] < v[1] < fs / 2)
        if not ok:
            raise RecipeError(
                f"{key}: {v!r} must be [low, high] in Hz with 0 < low < high < {fs / 2:g} "
                f"(half the spike rate of {fs:g} Hz)")
    v = hparams["utterance_id"]
    if not isinstance(v, int) or not -batch <= v < batch:
        raise RecipeError(
            f"utterance_id: {v!r} is not an element of the analysed batch: 0 to "
            f"{batch - 2} are the utterances (longest first), {batch - 1} or -1 the Gaussian "
            "noise")
    n = hparams["num_utterances_pac_analysis"]
    if not isinstance(n, int) or n < 1:
        raise RecipeError(f"num_utterances_pac_analysis: {n!r} must be a positive integer")


def _test_batch(hparams: Mapping[str, Any]) -> Any:
    """The first batch of the test annotation, longest utterances first (the original's
    order), batched as ``test_dataloader_opts`` says."""
    import speechbrain as sb

    path = Path(hparams["test_annotation"])
    if not path.is_file():
        raise RecipeError(f"test_annotation: {path} does not exist; run without skip_prep")
    data = load_annotation(path, hparams["data_folder"])
    data = data.filtered_sorted(sort_key="duration", reverse=True)

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    sb.dataio.dataset.add_dynamic_item([data], audio_pipeline)
    sb.dataio.dataset.set_output_keys([data], ["id", "sig"])
    loader = sb.dataio.dataloader.make_dataloader(data, **dict(hparams["test_dataloader_opts"]))
    return next(iter(loader))


def analyze_original(hparams: Mapping[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Analyse a trained model as the original's ``run_analysis.py`` does, with the keys of
    its ``timit_analysis.yaml``.

    The modules are the analysis file's own (its encoder parameters must match the trained
    model's), the checkpoint the one with the lowest validation PER in ``save_folder``; the
    batch is the ``num_utterances_pac_analysis`` longest test utterances plus one Gaussian
    noise input (normalised as the features are) as its last element.

    Returns:
        ``{"plots_folder", "figures": [names], "files": [written files], "utterances":
        [ids], "checkpoint"}``.

    Raises:
        RecipeError: no checkpoint, parameters that do not match it, a key with an unusable
            value.
    """
    from ..analysis.original import analyse_spikes

    _check_folder(hparams["data_folder"], "TIMIT")
    prepare_timit(hparams["data_folder"], hparams["save_folder"], 39,
                  skip_prep=bool(hparams.get("skip_prep", False)))
    checkpointer = hparams["checkpointer"]
    try:
        found = checkpointer.recover_if_possible(min_key="PER")
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RecipeError(
            f"the checkpoint in {checkpointer.checkpoints_dir} does not fit the model the "
            "analysis file builds: its encoder parameters (cortex_layer_sizes, "
            "auditory_channels, n_mels, phoneme_features, ...) must be those of the trained "
            f"model ({first})") from None
    if found is None:
        raise RecipeError(
            f"no checkpoint in {checkpointer.checkpoints_dir}: output_folder must be the "
            "training run's folder (pass --output_folder=PATH), and the training must have "
            "finished an epoch")
    dev = torch.device(device)
    model = hparams["model"].to(dev).eval()
    normalize = hparams["normalize"].to(dev).eval()
    compute_features = hparams["compute_features"].to(dev)
    batch = _test_batch(hparams)
    wavs, wav_lens = (t.to(dev) for t in batch.sig)
    with torch.no_grad():
        feats = normalize(compute_features(wavs), wav_lens)
        # the original's noise control: Gaussian features, normalised, as the last element
        noise = normalize(torch.randn(1, *feats.shape[1:], device=dev), torch.ones(1, device=dev))
        feats = torch.cat([feats, noise])
        wav_lens = torch.cat([wav_lens, torch.ones(1, device=dev)])
        out = model(feats, frame_lengths(wav_lens, feats.shape[1]))
    spikes = {k: v.cpu() for k, v in out.spikes.items()}
    hop = float(hparams["hop_length"])
    _check_analysis_keys(hparams, len(spikes), feats.shape[0], 1000.0 / hop)
    n_pac = int(hparams["num_utterances_pac_analysis"])
    if hparams["run_pac_analysis"] and n_pac > len(batch.id):
        print(f"num_utterances_pac_analysis: {n_pac}, but the test set has {len(batch.id)} "
              f"utterances in the batch; the PAC analysis takes those {len(batch.id)}")
        n_pac = len(batch.id)
    folder = Path(hparams["plots_folder"])
    start = time.time()
    result = analyse_spikes(
        model=model, all_spikes=spikes, feats=feats.cpu(), wavs=wavs.cpu(),
        wav_lens=wav_lens.cpu(), hop_length_ms=hop,
        phase_layer=hparams["phase_layer"], amplitude_layer=hparams["amplitude_layer"],
        phase_freq_range=tuple(hparams["phase_freq_range"]),
        amplitude_freq_range=tuple(hparams["amplitude_freq_range"]),
        phase_band_name=str(hparams["phase_band_name"]),
        amplitude_band_name=str(hparams["amplitude_band_name"]),
        num_utterances_pac_analysis=n_pac, utterance_id=hparams["utterance_id"],
        plot_parameters=bool(hparams["plot_parameters"]),
        plot_weights=bool(hparams["plot_weights"]), plot_spikes=bool(hparams["plot_spikes"]),
        plot_rates=bool(hparams["plot_rates"]),
        plot_phase_amplitude_coupling=bool(hparams["plot_pac"]),
        plot_filtered_population_signal=bool(hparams["plot_filtered_population"]),
        run_pac_analysis=bool(hparams["run_pac_analysis"]),
        save_plots=bool(hparams["save_plots"]), save_folder=folder)
    written = sorted(p for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime >= start - 1)
    return {"plots_folder": folder, "figures": sorted(result["figures"]), "files": written,
            "utterances": list(batch.id), "checkpoint": Path(found.path)}
