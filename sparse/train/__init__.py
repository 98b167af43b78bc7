"""Training and evaluation of the spiking encoders (``sparse train``, ``sparse evaluate``,
``sparse demo``).

- :mod:`.config`: YAML configs, validated (unknown or ill-typed keys name themselves);
- :mod:`.data`: corpora to cached log-mel feature sets;
- :mod:`.tasks`: one class per kind of training (keywords, phones, spike input);
- :mod:`.model`: normalisation + the task's network;
- :mod:`.losses`: firing rates, the rate regulariser, CTC and greedy decoding;
- :mod:`.metrics`: edit-distance alignment, PER, confusion matrix;
- :mod:`.trainer`: the loop (annealing, clipping, exact resume, DDP, progress, JSON log);
- :mod:`.checkpoints`: atomic writes, safe loads; :mod:`.distributed`: torchrun helpers;
- :mod:`.run`: a run folder end to end; :mod:`.demo`: the main job; :mod:`.cli`: commands.
"""

from .config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "load_config"]
