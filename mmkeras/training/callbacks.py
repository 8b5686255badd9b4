"""The callbacks every run gets, assembled in one place.

``build_callbacks`` returns, in order: the training position, learning-rate logging, the NaN guard
(a failed run, naming epoch and step), the epoch log (history and training_log.csv), the best-model
checkpoint, TensorBoard (scalars and the learning rate), a confusion-matrix image per epoch,
optional early stopping, and last the run backup (every epoch end and every ``backup_every`` steps;
``mmkeras.training.progress`` has the ones that survive a resume).

Example:
    >>> import numpy as np
    >>> confusion_counts(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
    [[1, 0], [1, 1]]
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import keras
import numpy as np

from mmkeras.training.backup import BackupStore
from mmkeras.training.objective import build_schedule
from mmkeras.training.progress import (
    BestModel,
    DivergenceGuard,
    EpochLog,
    Position,
    ResumableEarlyStopping,
    RunBackup,
)


def confusion_counts(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Confusion matrix, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels.astype(int), predictions.astype(int)), 1)
    return matrix


def confusion_matrix_figure(matrix: np.ndarray, class_names: list[str], title: str = "Confusion matrix"):
    """A matplotlib figure of ``matrix`` with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center",
                  color="white" if count > threshold else "black", fontsize=8)
    figure.tight_layout()
    return figure


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` to the epoch logs (the CSV log and history): the rate of the epoch's
    first step, a function of the epoch alone, so a resumed run logs what an uninterrupted one does
    (TensorBoard's ``epoch_learning_rate`` is Keras's own, the rate after the epoch's last step).

    Args:
        rate: a float, or a ``LearningRateSchedule`` of the optimizer's step (``build_schedule``).
        steps_per_epoch: steps in one epoch.
    """

    def __init__(self, rate, steps_per_epoch: int):
        super().__init__()
        self.rate, self.steps_per_epoch = rate, steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            rate = self.rate(epoch * self.steps_per_epoch) if callable(self.rate) else self.rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(rate))


class ConfusionMatrixImage(keras.callbacks.Callback):
    """Writes the validation confusion matrix as a TensorBoard image after each epoch.

    Args:
        dataset: batched ``(features, one-hot or int labels)`` validation data.
        class_names: names for the axes.
        log_dir: TensorBoard folder; images go to ``log_dir/validation``.
    """

    def __init__(self, dataset, class_names, log_dir):
        super().__init__()
        self.dataset = dataset
        self.class_names = list(class_names)
        self.log_dir = str(log_dir)
        self._writer = None
        self._forward = None

    def _predict(self, features):
        # A local forward pass: no strategy.run, so no collective that other workers would have to
        # join (predict_on_batch would, and under Mirrored it returns one replica's rows).
        if keras.backend.backend() != "tensorflow":
            return self.model(features, training=False)
        if self._forward is None:
            import tensorflow as tf

            self._forward = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        return self._forward(features)

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf

        labels, predictions = [], []
        for element in self.dataset:  # (features, targets[, sample weights])
            features, label = element[0], element[1]
            output = self._predict(features)
            output = output["probabilities"] if isinstance(output, dict) else output
            output = output[0] if isinstance(output, (list, tuple)) else output
            predictions.append(np.argmax(keras.ops.convert_to_numpy(output), axis=-1))
            label = label["probabilities"] if isinstance(label, dict) else label
            label = np.asarray(label)
            labels.append(label.argmax(-1) if label.ndim == 2 else label)
        matrix = confusion_counts(np.concatenate(labels), np.concatenate(predictions), len(self.class_names))
        figure = confusion_matrix_figure(matrix, self.class_names, f"Validation confusion matrix, epoch {epoch + 1}")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        import matplotlib.pyplot as plt

        plt.close(figure)
        image = tf.expand_dims(tf.io.decode_png(buffer.getvalue(), channels=4), 0)
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(f"{self.log_dir}/validation")
        with self._writer.as_default():
            tf.summary.image("confusion_matrix", image, step=epoch)
        self._writer.flush()


@dataclass
class RunCallbacks:
    """The list for ``fit``, and the two the trainer reads: where training is, and its history."""

    callbacks: list
    position: Position
    history: EpochLog


def build_callbacks(run, train_config, validation_data, class_names, *, steps_per_epoch: int, backup_every: int,
                    state=None, is_chief: bool = True, head_only: bool = False) -> RunCallbacks:
    """The standard callbacks for ``run`` (a ``mmkeras.training.run.Run``), resuming from ``state``
    (a ``mmkeras.training.backup.SavedState``) when given; ``head_only``: the model being fit is the
    head of a frozen-backbone cache, whose best weights are kept until the run ends."""
    position = Position(train_config.epochs, steps_per_epoch)
    history = EpochLog(run.csv_log if is_chief else None)
    rate = build_schedule(train_config, steps_per_epoch)
    callbacks = [position, LearningRateLogger(rate, steps_per_epoch), DivergenceGuard(position), history]
    stateful = {"history": history}
    if is_chief:
        best = BestModel(run.best_model, run.best_head_weights if head_only else None)
        stateful["best_model"] = best
        callbacks += [best, keras.callbacks.TensorBoard(log_dir=str(run.log_dir), update_freq="epoch")]
        if validation_data is not None:
            callbacks.append(ConfusionMatrixImage(validation_data, class_names, run.log_dir))
    if train_config.early_stopping_patience:
        stateful["early_stopping"] = ResumableEarlyStopping(train_config.early_stopping_patience)
        callbacks.append(stateful["early_stopping"])
    history.set_state([])  # a fresh start: rows from an attempt killed before its first backup go
    callbacks.append(RunBackup(BackupStore(run.backup_dir), position, every=backup_every, stateful=stateful,
                               state=state))
    return RunCallbacks(callbacks, position, history)
