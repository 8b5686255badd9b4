"""``train(config) -> Run``: one training run, in named stages.

1. ``check_before_run``, ``count_steps_per_epoch``: data prepared, manifests and label sets checked,
   batch size against the train split; nothing written yet.
2. ``RunLock``, ``open_run``: the run directory and its lock (a second training there is
   refused), the config, and the backup to resume from, if any.
3. ``load_or_fit_preprocessor``: the run's adapted preprocessor.
4. ``build_compiled_model``: model, loss, optimizer and metrics inside the strategy's scope.
5. ``fit_run`` (through ``fit_and_finish``): ``fit`` from the backup's exact position (epoch, step, optimizer step), one call
   for a resumed partial epoch and one for the rest, on batches that depend only on (seed, epoch).
6. ``finish_run``: last/best models and history written atomically, run.json ``complete``.
7. ``calibrate_run``: the temperature fitted on the validation split (``RUN/calibration.json``).

A run directory that holds an unfinished run is resumed from its last backup: the same command, run
again after a crash or a SIGKILL at any moment, continues where the backup was taken and trains the
planned epochs once. A finished run is left as it is unless ``overwrite=True``. A loss that becomes
NaN marks the run ``failed`` and raises ``RunFailedError`` naming epoch and step.

Example:
    >>> fit_segments((0, 0), epochs=4), fit_segments((1, 5), epochs=4), fit_segments((4, 0), epochs=4)
    ([(0, 4, 0)], [(1, 2, 5), (2, 4, 0)], [])
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import time
from pathlib import Path

from mmkeras.config import Config, load_config, save_config
from mmkeras.errors import ConfigError
from mmkeras.evaluation.calibration import calibrate_run
from mmkeras.training.atomic import remove_partials, replace_atomically, save_model_atomically, write_text_atomically
from mmkeras.training.backend import select_backend
from mmkeras.training.backup import BackupError, BackupStore, build_and_restore, kill_point
from mmkeras.training.lock import RunLock
from mmkeras.training.pretrained import init_from_pretrained, pretraining_run
from mmkeras.training.run import Run, RunFailedError, software_versions

DEFAULT_CONFIG = "digits"  # bundled: mmkeras/configs/digits.yaml


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


def check_before_run(config: Config) -> None:
    """What can fail before any work: the data prepared, every manifest read, label sets checked
    (``mmkeras.data.preflight``). No run directory exists yet, and TensorFlow has not started (a
    multi-worker strategy must be created first)."""
    from mmkeras.data.preflight import check_before_training

    ensure_data(config)
    check_before_training(config)
    if config.model.init_from:  # a missing or unfinished pretraining run is refused before any work
        pretraining_run(config.resolve_path(config.model.init_from), f"model.init_from={config.model.init_from!r}")


def count_steps_per_epoch(config: Config) -> int:
    """Full batches in the train split, refusing a batch size larger than the split."""
    from mmkeras.data.pipeline import num_examples

    batch_size = config.train.batch_size
    train_count = num_examples(config, "train")
    if train_count // batch_size == 0:
        raise ConfigError(
            f"train.batch_size={batch_size} is larger than the {train_count} training examples; lower it"
        )
    return train_count // batch_size


def open_run(run: Run, config: Config, plan, *, steps_per_epoch: int, overwrite: bool):
    """Clear (``overwrite``) or tidy the locked run directory, save the config, and return the
    backup to resume from (None for a fresh start)."""
    if overwrite:
        for path in run.run_dir.iterdir():
            if path != run.lock_file:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    remove_partials(run.run_dir)
    replace_atomically(run.config_file, lambda temp: save_config(config, temp))
    state = BackupStore(run.backup_dir).load()
    if state is not None and state.position[1] and state.meta.get("steps_per_epoch") != steps_per_epoch:
        raise BackupError(
            f"the backup {state.path} was taken mid-epoch at {state.meta.get('steps_per_epoch')} steps per epoch, "
            f"and this config makes {steps_per_epoch} (train.batch_size or the train split changed); use the "
            f"same settings, or delete {run.backup_dir} to train this run again from its first epoch"
        )
    import keras

    train_config = config.train
    run.update_status(status="training", failure=None, backend=keras.backend.backend(), strategy=plan.name,
                      replicas=plan.num_replicas, precision=train_config.precision, jit_compile=plan.jit_compile,
                      epochs_planned=train_config.epochs, batch_size=train_config.batch_size, versions=software_versions(),
                      init_from=config.resolve_path(config.model.init_from), label_fraction=config.data.label_fraction)
    return state


def load_or_fit_preprocessor(run: Run, config: Config):
    from mmkeras.data.pipeline import fit_preprocessor
    from mmkeras.data.preprocessor import Preprocessor

    if run.preprocessor_dir.exists():
        return Preprocessor.load(run.preprocessor_dir)
    preprocessor = fit_preprocessor(config)
    if preprocessor.num_classes < 2:
        raise ConfigError(
            f"the training split {config.data.train} has {preprocessor.num_classes} class(es) in column "
            f"{config.data.label!r} ({preprocessor.class_names}); a classifier needs at least 2"
        )
    preprocessor.save(run.preprocessor_dir)
    return preprocessor


@contextlib.contextmanager
def dtype_policy(name: str):
    """The global Keras dtype policy set to ``name`` while the model is built and trained."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_compiled_model(config: Config, preprocessor, plan, steps_per_epoch: int):
    """``(model, fit_model, cache)``: the model the run saves, the one ``fit`` trains (its head,
    sharing every layer, when frozen backbones are cached) and the ``FrozenCache`` (or None)."""
    import keras

    from mmkeras.models.factory import build_model, loss_weights
    from mmkeras.data.pipeline import caches
    from mmkeras.training.frozen_cache import FrozenCache
    from mmkeras.training.objective import build_loss, build_optimizer

    train_config = config.train
    with plan.scope():
        model = build_model(config.model, preprocessor)
        if config.model.init_from:  # a pretraining run's encoders (mmkeras.training.pretrained)
            init_from_pretrained(model, preprocessor, config)
        cache = FrozenCache.for_model(model, preprocessor, config) if caches(config.data) else None
        fit_model = cache.fit_model if cache is not None else model
        single = len(model.outputs) == 1
        accuracy = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        loss = build_loss(train_config) if single else {name: build_loss(train_config) for name in model.output_names}
        fit_model.compile(
            optimizer=build_optimizer(train_config, steps_per_epoch),
            loss=loss,
            metrics=accuracy if single else {"probabilities": accuracy},
            loss_weights=loss_weights(config.model, preprocessor),
            jit_compile=plan.jit_compile,
            steps_per_execution=train_config.steps_per_execution,
        )
        return model, plan.prepare_model(fit_model), cache


def fit_segments(start: tuple[int, int], epochs: int, stopped: bool = False) -> list[tuple[int, int, int]]:
    """``(initial_epoch, epochs, steps skipped)`` for each ``fit`` call that continues from ``start``
    (epoch, steps of it done): a partial epoch needs a call of its own (its ``steps_per_epoch`` is
    shorter). A run already past its last epoch (or stopped early) has nothing left to fit."""
    epoch, step = start
    if stopped or epoch >= epochs:
        return []
    if step == 0:
        return [(epoch, epochs, 0)]
    return [(epoch, epoch + 1, step)] + ([(epoch + 1, epochs, 0)] if epoch + 1 < epochs else [])


def fit_run(config: Config, run: Run, model, preprocessor, plan, state, *, steps_per_epoch: int, cache=None):
    """Train ``model`` from ``state``'s position (or the start); returns the ``RunCallbacks`` (with
    history). With a ``FrozenCache``, ``model`` is its ``fit_model``, fed the cached encodings."""
    from mmkeras.data.diagnosis import data_errors
    from mmkeras.data.pipeline import build_dataset
    from mmkeras.training.auto import resolve_verbose
    from mmkeras.training.callbacks import build_callbacks
    from mmkeras.training.fit_data import class_weights, shard_by_data, training_targets

    train_config, batch_size = config.train, config.train.batch_size
    weights = class_weights(config, preprocessor)
    static_batches = plan.jit_compile or plan.name == "tpu"

    def batches(split, training, weights=None, **options):
        make = cache.dataset if cache is not None else functools.partial(build_dataset, preprocessor=preprocessor)
        dataset = training_targets(make(config, split, training=training, batch_size=batch_size, **options),
                                   model, preprocessor.num_classes, weights)
        return shard_by_data(dataset) if plan.name == "multi_worker" else dataset

    def train_batches(first_epoch: int, skip_batches: int):
        return batches("train", True, weights, repeat=True, first_epoch=first_epoch, skip_batches=skip_batches)

    validation_data = None
    if config.data.validation:
        validation_data = batches("validation", False, drop_remainder=static_batches)
    callbacks = build_callbacks(run, train_config, validation_data, preprocessor.class_names,
                                steps_per_epoch=steps_per_epoch, backup_every=max(1, min(50, steps_per_epoch // 2)),
                                state=state, is_chief=plan.is_chief, head_only=cache is not None)
    start, stopped = (state.position, bool(state.meta.get("stopped"))) if state else ((0, 0), False)
    if state is not None:
        print(f"resuming {run.run_dir} from its backup {state.path.name}: epoch {start[0] + 1}/{train_config.epochs}, "
              f"{start[1]} of {steps_per_epoch} steps done")
        build_and_restore(model, state, train_batches(0, 0).element_spec, plan.scope)
    with data_errors(config, preprocessor):  # a bad file met mid-training: a DataError naming the row
        for first, end, skip in fit_segments(start, train_config.epochs, stopped):
            callbacks.position.start(first, skip)
            train_data = train_batches(first, skip)
            model.fit(train_data, validation_data=validation_data, initial_epoch=first, epochs=end,
                      steps_per_epoch=steps_per_epoch - skip, callbacks=callbacks.callbacks,
                      verbose=resolve_verbose(train_config.verbose))
            if model.stop_training:  # early stopping
                break
    return callbacks


def finish_run(run: Run, model, history: list[dict], *, seconds: float, resumed: bool, has_validation: bool,
               fit_model=None) -> Run:
    kill_point("finish")
    save_model_atomically(model, run.last_model)
    if run.best_head_weights.exists():  # the head of a frozen-backbone cache kept its best weights
        (fit_model or model).load_weights(run.best_head_weights)
        save_model_atomically(model, run.best_model)
        run.best_head_weights.unlink()
    elif not has_validation or not run.best_model.exists():
        save_model_atomically(model, run.best_model)
    write_text_atomically(run.history_file, json.dumps(history, indent=2))
    last = history[-1] if history else {}
    run.update_status(status="complete", epochs_done=len(history), train_seconds=round(seconds, 2),
                      parameters=int(model.count_params()), resumed=resumed,
                      **{k: last[k] for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in last})
    BackupStore(run.backup_dir).clear()  # after "complete": a kill in between leaves a run that is done
    return run


def fit_and_finish(config: Config, run: Run, plan, state, steps: int, preprocessor, model, fit_model, cache) -> None:
    """Stages 5 and 6: ``fit_run`` (a NaN marks the run ``failed``), then ``finish_run``."""
    start = time.time()
    try:
        callbacks = fit_run(config, run, fit_model, preprocessor, plan, state, steps_per_epoch=steps, cache=cache)
    except RunFailedError as error:
        run.update_status(status="failed", failure=error.failure)
        raise
    finish_run(run, model, callbacks.history.rows, seconds=time.time() - start, resumed=state is not None,
               has_validation=bool(config.data.validation), fit_model=fit_model)


def train(config: Config, run_dir=None, *, overwrite: bool = False) -> Run:
    """Train ``config`` into ``run_dir`` (resuming an unfinished run there) and return the ``Run``."""
    backend = select_backend(config.train.backend)
    run = Run(run_dir or default_run_dir(config))
    if run.complete and not overwrite:
        BackupStore(run.backup_dir).clear()
        print(f"{run.run_dir} already holds a complete run ({run.status().get('epochs_done')} epochs); "
              "nothing to do (pass another --run-dir to train again)")
        return run
    check_before_run(config)

    import keras  # after check_before_run: a multi-worker strategy must exist before TensorFlow starts

    from mmkeras.training.strategy import build_strategy
    keras.utils.set_random_seed(config.train.seed)
    plan = build_strategy(config.train)
    if not plan.is_chief:  # non-chief workers write their copies beside the chief's
        run = Run(run.run_dir / "workers" / str(plan.worker_index))
    try:
        steps = count_steps_per_epoch(config)
        with RunLock(run.run_dir):
            state = open_run(run, config, plan, steps_per_epoch=steps, overwrite=overwrite)
            preprocessor = load_or_fit_preprocessor(run, config)
            with dtype_policy(config.train.precision):
                model, fit_model, cache = build_compiled_model(config, preprocessor, plan, steps)
                fit_and_finish(config, run, plan, state, steps, preprocessor, model, fit_model, cache)
    finally:
        if backend == "jax":
            keras.distribution.set_distribution(None)
    if plan.is_chief:  # after the distribution is gone: one process predicts the validation split
        calibrate_run(run)
    return run
