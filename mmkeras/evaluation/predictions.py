"""A run's model and its predictions on a split: what evaluation, calibration and export share.

``predict_split`` runs the run's best model over a split of its config exactly as evaluation
sees it (no augmentation, every row, in manifest order); ``without`` makes one modality missing
the way a blank cell reaches the model (its input zeros, its presence flag 0).

Example (not run here: it needs a trained run):
    preprocessor, labels, probabilities, ablations = predict_split(Run("runs/demo"), "test")
    probabilities.shape, sorted(ablations)   # (300, 10), ['audio', 'image', 'text']
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from mmkeras.training.run import Run


def load_run_model(run: Run):
    """The run's best (else last) ``.keras`` model, with mmkeras components registered."""
    import keras

    from mmkeras import registry

    registry.load_all()
    return keras.models.load_model(run.model_path())


class LoadedRun(NamedTuple):
    """A run's config, adapted preprocessor and model, loaded once for several passes."""

    run: Run
    config: object
    preprocessor: object
    model: object

    @property
    def columns(self) -> list:
        return [spec.column for spec in self.preprocessor.input_specs]


def load_run(run) -> LoadedRun:
    """``LoadedRun`` of a run directory (or a ``Run``); a ``LoadedRun`` is returned as it is."""
    if isinstance(run, LoadedRun):
        return run
    from mmkeras.config import load_config
    from mmkeras.data.preprocessor import Preprocessor

    run = run if isinstance(run, Run) else Run(run)
    config = load_config(run.config_file)
    return LoadedRun(run, config, Preprocessor.load(run.preprocessor_dir), load_run_model(run))


def model_probabilities(model, features) -> np.ndarray:
    """The model's main ``probabilities`` output on one batch, as float64 NumPy."""
    import keras

    output = model(features, training=False)
    if isinstance(output, dict):
        output = output["probabilities"]
    elif isinstance(output, (list, tuple)):
        output = output[0]
    return keras.ops.convert_to_numpy(output).astype(np.float64)


def without(features: dict, columns) -> dict:
    """``features`` with ``columns`` (a name or several) missing: inputs zeros, presence flags 0."""
    import tensorflow as tf

    ablated = dict(features)
    for column in [columns] if isinstance(columns, str) else columns:
        ablated[column] = tf.zeros_like(features[column])
        ablated[f"{column}_present"] = tf.zeros_like(features[f"{column}_present"])
    return ablated


def subset_name(columns) -> str:
    """``"image+audio"``: the key of a subset of present modalities in reports."""
    return "+".join(columns)


def proper_subsets(columns: list) -> list:
    """Every non-empty proper subset of ``columns``, in column order, largest first."""
    subsets = [tuple(c for i, c in enumerate(columns) if mask >> i & 1) for mask in range(1, 2 ** len(columns) - 1)]
    return sorted(subsets, key=lambda s: (-len(s), [columns.index(c) for c in s]))


def predict_split(run, split: str, *, subsets: bool = True):
    """``(preprocessor, labels, probabilities, {subset name: probabilities})`` on ``split`` of the
    run (a run directory, ``Run`` or ``LoadedRun``).

    With ``subsets``, the model also sees every non-empty proper subset of the run's modalities
    present (the others missing, through their presence flags, as serving sees a request with
    empty inputs): ``{"image+audio": probabilities, "text": ...}``.
    """
    from mmkeras.data.diagnosis import data_errors
    from mmkeras.data.pipeline import build_dataset

    loaded = load_run(run)
    config, preprocessor, model, columns = loaded.config, loaded.preprocessor, loaded.model, loaded.columns
    if getattr(config.data, split) is None:
        raise ValueError(f"the run's config has no data.{split} manifest to evaluate on")
    dataset = build_dataset(config, split, preprocessor, training=False,
                            batch_size=config.train.batch_size, drop_remainder=False)
    labels, probabilities = [], []
    kept = {subset: [] for subset in proper_subsets(columns)} if subsets else {}
    with data_errors(config, preprocessor, [split]):  # a bad file: DataError naming row and file
        for features, label in dataset:
            labels.append(np.asarray(label))
            probabilities.append(model_probabilities(model, features))
            for subset, out in kept.items():
                out.append(model_probabilities(model, without(features, [c for c in columns if c not in subset])))
    return (preprocessor, np.concatenate(labels), np.concatenate(probabilities),
            {subset_name(s): np.concatenate(p) for s, p in kept.items()})
