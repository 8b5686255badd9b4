"""``distill(config, teacher_dir, run_dir)``: a student config trained on a teacher run's soft targets.

The student is a run of its own config through the trainer's stages (``mmkeras.training.trainer``),
with three differences:

- Its preprocessor is the teacher's, copied from ``TEACHER/preprocessor``: the same class list,
  vocabularies, statistics and features, so that both models read the same batch. The student's
  ``data.label`` and ``data.features`` must be the teacher's (``check_student`` names the first
  column or key that differs); its encoders, fusion and head may be anything else, smaller as a rule.
- ``fit`` trains a ``Distiller`` (``mmkeras.models.distillation``): the frozen teacher runs in
  inference mode on every augmented batch, and the loss is ``distill.alpha * T^2 * KL`` on the soft
  targets plus ``(1 - alpha) *`` the run's own loss (``train.loss``, ``train.label_smoothing``),
  with ``T = distill.temperature``.
- With ``data.label_fraction < 1`` and ``distill.unlabelled`` (the default), training reads every
  train row: the rows outside the labelled subset come without their label (an all-zero one-hot
  row) and train on the soft term alone; the steps per epoch count every row.

Soft targets come from the raw teacher (its ``best.keras``), not from its calibrated distribution:
the teacher's calibration temperature ``T_c`` (``TEACHER/calibration.json``) would only turn ``T``
into ``T * T_c``, and ``T`` is the setting to tune. run.json records ``T_c`` beside ``T``; the
student fits its own calibration on the validation split afterwards, as every run does.

What it costs: the teacher's forward pass in every step, its weights in every run backup, and no
frozen-backbone cache (``mmkeras.training.frozen_cache``): a student's frozen KerasHub encoders run in
every step, since the teacher needs the raw features of the same batch.

The student folder is a complete run (``best.keras`` / ``last.keras`` are the student's Functional
model, ``calibration.json``; ``mmkeras evaluate`` and ``mmkeras export`` take it) whose run.json
adds ``"distilled_from"`` (the teacher's path) and ``"distill"`` (the settings). A complete run is
left as it is unless ``overwrite``; an interrupted one resumes from its backup, as ``train`` does.

Example (not run here: it trains):
    run = distill(load_config("student.yaml"), "runs/teacher", "runs/student")
    run.status()["distilled_from"]        # '/abs/path/runs/teacher'
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from mmkeras.config import Config, load_config
from mmkeras.errors import ConfigError
from mmkeras.evaluation.calibration import CALIBRATION_FILE, calibrate_run
from mmkeras.training.atomic import partial_path
from mmkeras.training.backend import select_backend
from mmkeras.training.lock import RunLock
from mmkeras.training.run import Run
from mmkeras.training.trainer import (check_before_run, count_steps_per_epoch, dtype_policy, fit_and_finish,
                                      load_or_fit_preprocessor, open_run)

#: The pipeline key of each train row's "has a label" flag (it joins the rows as cached encodings do).
LABELLED_KEY = "encoded___labelled__0"


def teacher_run(path) -> Run:
    """The complete classifier run at ``path`` (``--teacher``), or a ``ConfigError`` saying what it is instead."""
    run = Run(Path(path).resolve())
    if not run.config_file.exists():
        raise ConfigError(f"--teacher {path} is not an mmkeras run (no config.yaml); name a trained run directory")
    status = run.status()
    if status.get("kind") == "pretrain":
        raise ConfigError(f"--teacher {path} is a pretraining run, not a classifier; train one from it with "
                          "model.init_from and distil that")
    if run.failure_message(status):
        raise ConfigError(f"--teacher: {run.failure_message(status)}")
    if status.get("status") != "complete":
        raise ConfigError(f"--teacher {path} is not a complete run (status {status.get('status')!r}); finish "
                          "training it first")
    return run


def _differing_key(ours: dict, theirs: dict):
    return next((key for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)), None)


def check_student(config, teacher) -> None:
    """Refuse, naming the key, a student config (``config``) that cannot learn from ``teacher`` (its config).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> def cfg(height):
        ...     feature = NS(modality="image", height=height)
        ...     return NS(data=NS(label="label", features={"image": feature}, label_fraction=1.0),
        ...               model=NS(head={"type": "softmax"}), train=NS(strategy="cpu"))
        >>> check_student(cfg(28), cfg(28))
        >>> check_student(cfg(32), cfg(28))
        Traceback (most recent call last):
        ...
        mmkeras.errors.ConfigError: data.features.image.height=32 differs from the teacher's (28): ...
    """
    if config.data.label != teacher.data.label:
        raise ConfigError(f"data.label={config.data.label!r} differs from the teacher's ({teacher.data.label!r}); "
                          "the student learns the teacher's classes from the same column")
    ours, theirs = config.data.features, teacher.data.features
    for column in [c for c in theirs if c not in ours] + [c for c in ours if c not in theirs]:
        owner = "the teacher" if column in theirs else "the student"
        raise ConfigError(f"data.features.{column}: only {owner} has this column; the student reads the teacher's "
                          f"batches, so its data.features are the teacher's ({', '.join(theirs)})")
    for column in ours:
        mine, its = vars(ours[column]), vars(theirs[column])
        key = _differing_key(mine, its)
        if key is not None:
            raise ConfigError(f"data.features.{column}.{key}={mine.get(key)!r} differs from the teacher's "
                              f"({its.get(key)!r}): the student reads the teacher's batches, prepared by its "
                              "adapted preprocessor; set it as the teacher has it")
    for who, model in (("", config.model), ("the teacher's ", teacher.model)):
        if (model.head or {}).get("type") == "sigmoid":
            raise ConfigError(f"{who}model.head.type=sigmoid: distillation matches softmax distributions; use a "
                              "softmax head")
    if (config.model.head or {}).get("auxiliary"):
        raise ConfigError("model.head.auxiliary=true: distillation trains the main output only; set it to false")
    if config.train.strategy == "multi_worker":
        raise ConfigError("train.strategy=multi_worker is not supported by mmkeras distill; use mirrored (one "
                          "machine) or train.backend=jax with data_parallel")
    if reads_unlabelled_rows(config) and config.data.on_error == "skip":
        raise ConfigError("data.on_error=skip with distill.unlabelled: a skipped row would shift which rows have "
                          "labels; fix the bad rows (mmkeras data validate) or set distill.unlabelled=false")
    if reads_unlabelled_rows(config) and config.train.class_weight:
        raise ConfigError(f"train.class_weight={config.train.class_weight} with distill.unlabelled: the rows "
                          "without a label have no class to weigh; leave it unset or set distill.unlabelled=false")


def reads_unlabelled_rows(config) -> bool:
    """Whether distillation also reads the train rows outside ``data.label_fraction``'s subset."""
    return bool(getattr(getattr(config, "distill", None), "unlabelled", False)) and config.data.label_fraction < 1


def every_row(config: Config) -> Config:
    """``config`` with ``data.label_fraction = 1``: the pipeline then reads every train row."""
    return dataclasses.replace(config, data=dataclasses.replace(config.data, label_fraction=1.0))


class DistillBatches:
    """The batches ``fit_run`` trains a ``Distiller`` on, in place of ``build_dataset``'s.

    With ``labelled`` (the row numbers of ``data.label_fraction``'s subset), training on the train
    split reads every row and gives the others the label -1, which ``fit_data.training_targets``
    one-hot encodes as a row of zeros: no label. The flags join the rows by position in the
    pipeline's own order (``build_dataset(..., encoded=...)``, as cached encodings do).
    """

    def __init__(self, preprocessor, labelled=None):
        self.preprocessor, self.labelled, self._flags = preprocessor, labelled, None

    def flags(self, config):
        """1.0 / 0.0 per train row, in the order the training pipeline reads the rows."""
        import numpy as np

        from mmkeras.data.rows import ROW_KEY, split_path

        if self._flags is None:
            rows, _ = self.preprocessor.rows(split_path(config, "train"), shuffle_seed=config.data.seed, columns=[])
            numbers = [batch.numpy() for batch in rows.map(lambda row: row[ROW_KEY]).batch(4096)]
            self._flags = np.isin(np.concatenate(numbers), self.labelled).astype("float32")
        return self._flags

    def dataset(self, config, split: str, *, training: bool, batch_size: int, **options):
        import tensorflow as tf

        from mmkeras.data.pipeline import build_dataset

        if self.labelled is None or split != "train" or not training:
            return build_dataset(config, split, self.preprocessor, training=training, batch_size=batch_size, **options)
        config = every_row(config)
        batches = build_dataset(config, "train", self.preprocessor, training=True, batch_size=batch_size,
                                encoded={LABELLED_KEY: self.flags(config)}, **options)

        def hide_labels(features, label):
            kept = {key: value for key, value in features.items() if key != LABELLED_KEY}
            return kept, tf.where(features[LABELLED_KEY] > 0, label, -tf.ones_like(label))

        return batches.map(hide_labels, num_parallel_calls=tf.data.AUTOTUNE)


def build_distiller(config: Config, preprocessor, plan, steps_per_epoch: int, teacher: Run):
    """``(student, distiller)``: the student built from ``config``, the teacher loaded, both in the
    strategy's scope, and the ``Distiller`` compiled."""
    import keras

    from mmkeras.evaluation.predictions import load_run_model
    from mmkeras.models.distillation import DistillationLoss, Distiller
    from mmkeras.models.factory import build_model
    from mmkeras.training.objective import build_loss, build_optimizer
    from mmkeras.training.pretrained import init_from_pretrained

    with plan.scope():
        student = build_model(config.model, preprocessor)
        if config.model.init_from:
            init_from_pretrained(student, preprocessor, config)
        loss = DistillationLoss(config.distill.temperature, config.distill.alpha, hard_loss=build_loss(config.train),
                                teacher_temperature=teacher_temperature(config, teacher))
        distiller = Distiller(student, load_run_model(teacher), loss, name="distiller")
        distiller.compile(optimizer=build_optimizer(config.train, steps_per_epoch), jit_compile=plan.jit_compile,
                          weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                          steps_per_execution=config.train.steps_per_execution)
    return student, distiller


def _teacher_preprocessor(run: Run, teacher: Run):
    """Copy the teacher's preprocessor into the run (atomically), or check the one already there is it."""
    from mmkeras.data.preprocessor import Preprocessor

    if run.preprocessor_dir.exists():
        if Preprocessor.load(run.preprocessor_dir).get_config() != Preprocessor.load(teacher.preprocessor_dir).get_config():
            raise ConfigError(f"{run.run_dir} holds a preprocessor that is not the teacher's; pass --overwrite or "
                              "another --run-dir")
        return
    temp = partial_path(run.preprocessor_dir)
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(teacher.preprocessor_dir, temp)
    os.replace(temp, run.preprocessor_dir)


def teacher_temperature(config: Config, teacher: Run) -> float:
    """``T_c`` of the soft targets: the teacher's calibration temperature with ``distill.calibrated_teacher``
    (read from its calibration.json, never fitted here: the teacher's folder is not written), else 1."""
    calibration = teacher.run_dir / CALIBRATION_FILE
    if not config.distill.calibrated_teacher or not calibration.exists():
        return 1.0
    return float(json.loads(calibration.read_text()).get("temperature", 1.0))


def distill_settings(config: Config, teacher: Run) -> dict:
    """What run.json records under ``"distill"``."""
    return {"temperature": config.distill.temperature, "alpha": config.distill.alpha,
            "unlabelled_rows": reads_unlabelled_rows(config), "calibrated_teacher": config.distill.calibrated_teacher,
            "teacher_temperature": teacher_temperature(config, teacher),
            "teacher_parameters": teacher.status().get("parameters")}


def distill(config: Config, teacher_dir, run_dir, *, overwrite: bool = False) -> Run:
    """Train ``config``'s model into ``run_dir`` on the teacher run's soft targets; returns the ``Run``."""
    backend = select_backend(config.train.backend)
    teacher = teacher_run(teacher_dir)
    check_student(config, load_config(teacher.config_file))
    run = Run(run_dir)
    if run.complete and not overwrite:
        print(f"{run.run_dir} already holds a complete run; nothing to train (pass --overwrite to train it again)")
        return run
    check_before_run(config)

    import keras

    from mmkeras.data.rows import labelled_rows
    from mmkeras.training.strategy import build_strategy

    keras.utils.set_random_seed(config.train.seed)
    plan = build_strategy(config.train)
    unlabelled = reads_unlabelled_rows(config)
    try:
        steps = count_steps_per_epoch(every_row(config) if unlabelled else config)
        with RunLock(run.run_dir):
            state = open_run(run, config, plan, steps_per_epoch=steps, overwrite=overwrite)
            run.update_status(distilled_from=str(teacher.run_dir), distill=distill_settings(config, teacher))
            _teacher_preprocessor(run, teacher)
            preprocessor = load_or_fit_preprocessor(run, config)
            with dtype_policy(config.train.precision):
                student, distiller = build_distiller(config, preprocessor, plan, steps, teacher)
                batches = DistillBatches(preprocessor, labelled_rows(config) if unlabelled else None)
                fit_and_finish(config, run, plan, state, steps, preprocessor, student, distiller, batches)
    finally:
        if backend == "jax":
            keras.distribution.set_distribution(None)
    calibrate_run(run)
    return run
