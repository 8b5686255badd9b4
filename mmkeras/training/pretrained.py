"""A pretraining run read back: its towers for retrieval, and its encoders for ``model.init_from``.

``mmkeras pretrain`` writes ``P/towers.keras`` beside the run's config and preprocessor
(``mmkeras.training.pretrain``). ``load_towers(P)`` returns them for retrieval;
``init_from_pretrained(model, preprocessor, config)`` loads the encoders into a classifier
built from the same ``data.features`` and ``model.encoders``, after checking that the run's
preprocessor (vocabularies, statistics, preset assets) is the one the encoders learned from.

Example:
    >>> towers_path("runs/emoji-pretrain").name
    'towers.keras'
"""

from __future__ import annotations

from pathlib import Path

from mmkeras.errors import ConfigError
from mmkeras.training.run import Run

TOWERS_FILE = "towers.keras"
REPORT_FILE = "pretrain_report.json"
HISTORY_FILE = "pretrain_history.json"
KIND = "pretrain"


def towers_path(run_dir) -> Path:
    return Path(run_dir) / TOWERS_FILE


def pretraining_run(run_dir, where: str = "pretraining run") -> Run:
    """The ``Run`` at ``run_dir``, checked to be a complete pretraining run."""
    run = Run(run_dir)
    status = run.status()
    if not run.run_dir.is_dir():
        raise ConfigError(f"{where}: {run.run_dir} does not exist; make it with mmkeras pretrain")
    if status.get("kind") != KIND:
        raise ConfigError(f"{where}: {run.run_dir} is not a pretraining run (its run.json has no kind 'pretrain'); "
                          "make one with mmkeras pretrain")
    if status.get("status") != "complete" or not towers_path(run_dir).exists():
        raise ConfigError(f"{where}: {run.run_dir} is unfinished (status {status.get('status')!r}); run mmkeras "
                          "pretrain there again")
    return run


def load_towers(run_dir, where: str = "pretraining run"):
    """``(towers, preprocessor, config)`` of a complete pretraining run."""
    import keras

    from mmkeras import registry
    from mmkeras.config import load_config
    from mmkeras.data.preprocessor import Preprocessor

    run = pretraining_run(run_dir, where)
    registry.load_all()
    towers = keras.models.load_model(towers_path(run.run_dir))
    return towers, Preprocessor.load(run.preprocessor_dir), load_config(run.config_file)


def _column_state(preprocessor) -> dict:
    config = preprocessor.get_config()
    return {c: (config["features"][c], config["columns"].get(c)) for c in config["features"]}


def check_same_columns(preprocessor, pretrained, where: str) -> None:
    """Refuse a preprocessor whose columns differ (settings or adapted state) from ``pretrained``'s."""
    ours, theirs = _column_state(preprocessor), _column_state(pretrained)
    if sorted(ours) != sorted(theirs):
        raise ConfigError(f"{where}: the pretraining run has the columns {', '.join(sorted(theirs))} and this config "
                          f"{', '.join(sorted(ours))}; use the data.features it was pretrained with")
    for column in ours:
        if ours[column] != theirs[column]:
            raise ConfigError(f"{where}: column {column!r} is not prepared as in the pretraining run (its settings "
                              "or its adapted vocabulary / statistics differ); use the data.features and train split "
                              "it was pretrained with")


def init_from_pretrained(model, preprocessor, config) -> dict:
    """Load ``model.init_from``'s encoders into ``model``; ``{"init_from": path, "init_layers": n}``.

    The towers are rebuilt from this config's ``model.encoders`` and take the saved weights
    (``Model.load_weights`` of ``towers.keras``, which also maps a LoRA-tuned backbone, saved merged,
    onto one with LoRA enabled), then every encoder layer is copied into ``model`` by name.
    """
    from mmkeras.config import load_config
    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.models.towers import build_towers, load_pretrained_encoders

    path = config.resolve_path(config.model.init_from)
    where = f"model.init_from={config.model.init_from!r}"
    run = pretraining_run(path, where)
    check_same_columns(preprocessor, Preprocessor.load(run.preprocessor_dir), where)
    towers = build_towers(config.model, preprocessor, load_config(run.config_file).pretrain.projection_dim)
    try:
        towers.load_weights(towers_path(run.run_dir))
    except ValueError as error:
        raise ConfigError(f"{where}: its encoders do not fit this config's model.encoders ({str(error).splitlines()[0]}); "
                          "use the model.encoders it was pretrained with") from None
    copied = load_pretrained_encoders(model, towers, source=f"the pretraining run {path}")
    return {"init_from": str(Path(path).resolve()), "init_layers": len(copied)}
