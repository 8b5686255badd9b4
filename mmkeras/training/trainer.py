"""``train(config) -> Run``: preprocessor, pipeline, model, strategy and callbacks in one call.

A run directory that already holds an unfinished run is resumed from its last backup (the same
command, run again after a crash or a SIGKILL, finishes the planned epochs); a finished run is left
as it is unless ``overwrite=True``.

Example (not run here: it trains):
    run = train(load_config("configs/digits.yaml", ["train.epochs=2"]), run_dir="runs/demo")
    print(run.status()["val_accuracy"])
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from mmkeras.config import Config, ConfigError, load_config, save_config
from mmkeras.training.backend import select_backend
from mmkeras.training.run import Run

DEFAULT_CONFIG = "configs/digits.yaml"


def resolve_run_config(config_path: str | None, overrides: list[str], run_dir: str | None) -> Config:
    """The config for ``mmkeras train``: ``--config`` if given, else the run dir's own (to resume),
    else the default digits config."""
    if config_path is None and run_dir and Run(run_dir).config_file.exists():
        return load_config(Run(run_dir).config_file, overrides)
    return load_config(config_path or DEFAULT_CONFIG, overrides)


def default_run_dir(config: Config) -> Path:
    stem = Path(config.source).stem if config.source else "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def ensure_data(config: Config) -> None:
    """Prepare the bundled dataset named by ``data.prepare`` when its manifests are missing."""
    train_path = config.resolve_path(config.data.train)
    if train_path is None:
        raise ConfigError("data.train is not set: name the training manifest (CSV, JSONL or TFRecords)")
    if config.data.prepare and "://" not in train_path and not Path(train_path).exists():
        from mmkeras import datasets

        datasets.ensure_prepared(config.data.prepare, Path(train_path).parent)


def build_loss(train_config):
    """Cross-entropy (with label smoothing) or focal loss, on one-hot labels."""
    import keras

    if train_config.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            gamma=train_config.focal_gamma, label_smoothing=train_config.label_smoothing
        )
    return keras.losses.CategoricalCrossentropy(label_smoothing=train_config.label_smoothing)


def build_optimizer(train_config, steps_per_epoch: int):
    """AdamW/Adam/SGD with optional linear warm-up then cosine decay, and gradient clipping."""
    import keras

    total = max(1, train_config.epochs * steps_per_epoch)
    warmup = int(train_config.warmup_epochs * steps_per_epoch)
    rate = train_config.learning_rate
    if train_config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else rate,
            decay_steps=max(1, total - warmup),
            warmup_target=rate if warmup else None,
            warmup_steps=warmup,
        )
    clip = {"clipnorm": train_config.clipnorm} if train_config.clipnorm else {}
    if train_config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=train_config.weight_decay, **clip)
    if train_config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate, **clip)
    return keras.optimizers.SGD(learning_rate=rate, momentum=0.9, **clip)


def balanced_class_weights(label_ids, num_classes: int) -> list[float]:
    """``n / (k * count_c)`` per class (scikit-learn's "balanced"); absent classes get 0.

    Example:
        >>> balanced_class_weights([0, 0, 0, 1], 2)
        [0.6666666666666666, 2.0]
    """
    counts = [0] * num_classes
    for label in label_ids:
        counts[int(label)] += 1
    total = sum(counts)
    return [total / (num_classes * c) if c else 0.0 for c in counts]


def _train_label_ids(config: Config, preprocessor) -> list[int]:
    """Class ids of the training rows, read from the manifest's label column (no file decoding)."""
    from mmkeras.data.pipeline import row_dataset, split_path

    rows, _ = row_dataset(split_path(config, "train"), preprocessor)
    batches = rows.map(lambda row: preprocessor.encode_label(row["_label"])).batch(4096)
    return [int(i) for batch in batches for i in batch.numpy() if i >= 0]


def _training_targets(dataset, model, num_classes: int, class_weights=None):
    """(features, label) -> (features, one-hot per output[, sample weights]).

    With auxiliary heads (outputs ``aux_<column>``), each one's loss only counts the examples where
    its column is present: a missing modality must not be trained to predict the label.
    """
    import tensorflow as tf

    names = list(model.output_names)
    weights = tf.constant(class_weights, tf.float32) if class_weights else None

    def to_targets(features, label):
        one_hot = tf.one_hot(label, num_classes)
        example_weight = tf.gather(weights, label) if weights is not None else tf.ones_like(label, tf.float32)
        if len(names) == 1:
            return (features, one_hot) if weights is None else (features, one_hot, example_weight)
        sample_weight = {
            name: example_weight * features[f"{name[len('aux_'):]}_present"] if name.startswith("aux_")
            else example_weight
            for name in names
        }
        return features, {name: one_hot for name in names}, sample_weight

    return dataset.map(to_targets, num_parallel_calls=tf.data.AUTOTUNE)


def _shard_by_data(dataset):
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _load_or_fit_preprocessor(run: Run, config: Config):
    from mmkeras.data.pipeline import fit_preprocessor
    from mmkeras.data.preprocessor import Preprocessor

    if run.preprocessor_dir.exists():
        return Preprocessor.load(run.preprocessor_dir)
    preprocessor = fit_preprocessor(config)
    preprocessor.save(run.preprocessor_dir)
    return preprocessor


def _versions() -> dict:
    import keras
    import tensorflow as tf

    import mmkeras

    return {"mmkeras": mmkeras.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": sys.version.split()[0]}


def train(config: Config, run_dir=None, *, overwrite: bool = False) -> Run:
    """Train ``config`` into ``run_dir`` (resuming an unfinished run there) and return the ``Run``."""
    backend = select_backend(config.train.backend)
    run = Run(run_dir or default_run_dir(config))
    if overwrite and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    if run.complete:
        print(f"{run.run_dir} already holds a complete run ({run.status().get('epochs_done')} epochs); "
              "nothing to do (pass another --run-dir to train again)")
        return run

    import keras

    from mmkeras.data.errors import data_errors
    from mmkeras.data.pipeline import build_dataset, num_examples
    from mmkeras.models.factory import build_model, loss_weights
    from mmkeras.training.callbacks import build_callbacks
    from mmkeras.training.strategy import build_strategy

    ensure_data(config)
    train_config = config.train
    keras.utils.set_random_seed(train_config.seed)
    plan = build_strategy(train_config)
    if not plan.is_chief:  # non-chief workers write their copies beside the chief's
        run = Run(run.run_dir / "workers" / str(plan.worker_index))
    run.run_dir.mkdir(parents=True, exist_ok=True)
    resumed = run.backup_dir.exists()
    save_config(config, run.config_file)
    preprocessor = _load_or_fit_preprocessor(run, config)
    if preprocessor.num_classes < 2:
        raise ConfigError(
            f"the training split {config.data.train} has {preprocessor.num_classes} class(es) in column "
            f"{config.data.label!r} ({preprocessor.class_names}); a classifier needs at least 2"
        )
    run.update_status(status="training", backend=backend, strategy=plan.name, replicas=plan.num_replicas,
                      precision=train_config.precision, epochs_planned=train_config.epochs,
                      batch_size=train_config.batch_size, versions=_versions())

    batch_size = train_config.batch_size
    train_count = num_examples(config, "train")
    steps_per_epoch = train_count // batch_size
    if steps_per_epoch == 0:
        raise ConfigError(
            f"train.batch_size={batch_size} is larger than the {train_count} training examples; lower it"
        )
    static_batches = train_config.jit_compile or plan.name == "tpu"
    class_weights = None
    if train_config.class_weight == "balanced":
        class_weights = balanced_class_weights(_train_label_ids(config, preprocessor), preprocessor.num_classes)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(train_config.precision)
    try:
        with plan.scope():
            model = build_model(config.model, preprocessor)
            model.compile(
                optimizer=build_optimizer(train_config, steps_per_epoch),
                loss=build_loss(train_config) if len(model.outputs) == 1
                else {name: build_loss(train_config) for name in model.output_names},
                metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")] if len(model.outputs) == 1
                else {"probabilities": [keras.metrics.CategoricalAccuracy(name="accuracy")]},
                loss_weights=loss_weights(config.model, preprocessor),
                jit_compile=train_config.jit_compile,
                steps_per_execution=train_config.steps_per_execution,
            )
            model = plan.prepare_model(model)
        train_data = _training_targets(
            build_dataset(config, "train", preprocessor, training=True, batch_size=batch_size),
            model, preprocessor.num_classes, class_weights)
        validation_data = None
        if config.data.validation:
            validation_data = _training_targets(
                build_dataset(config, "validation", preprocessor, training=False, batch_size=batch_size,
                              drop_remainder=static_batches),
                model, preprocessor.num_classes)
        if plan.name == "multi_worker":
            train_data = _shard_by_data(train_data)
            validation_data = _shard_by_data(validation_data) if validation_data is not None else None
        previous = [row["val_loss"] for row in run.epoch_rows() if "val_loss" in row]
        callbacks = build_callbacks(
            run, train_config, validation_data, preprocessor.class_names, is_chief=plan.is_chief,
            backup_every=max(1, min(50, steps_per_epoch // 2)), previous_best=min(previous) if previous else None)
        if resumed:
            print(f"resuming {run.run_dir} from its backup")
        start = time.time()
        with data_errors(config, preprocessor):  # a bad file met mid-training: a DataError naming the row
            model.fit(train_data, validation_data=validation_data, epochs=train_config.epochs,
                      callbacks=callbacks, verbose=train_config.verbose)
        seconds = time.time() - start
        model.save(run.last_model)
        if not run.best_model.exists():
            model.save(run.best_model)
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if backend == "jax":
            keras.distribution.set_distribution(None)

    rows = run.epoch_rows()
    run.history_file.write_text(json.dumps(rows, indent=2))
    last = rows[-1] if rows else {}
    run.update_status(status="complete", epochs_done=len(rows), train_seconds=round(seconds, 2),
                      parameters=int(model.count_params()), resumed=resumed,
                      **{k: last[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in last})
    return run
