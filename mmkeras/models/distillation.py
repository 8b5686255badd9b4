"""Knowledge distillation (Hinton et al. 2015): a student trained on a frozen teacher's soft targets.

``DistillationLoss`` on a batch of student probabilities ``s``, teacher probabilities ``t`` and
one-hot labels ``y`` (an all-zero row: an example without a label) is::

    alpha * T^2 * mean_i KL(softmax(log t_i / T) || softmax(log s_i / T))
    + (1 - alpha) * sum_i m_i hard(y_i, s_i) / max(1, sum_i m_i)        m_i = 1 if y_i has a label

with ``T`` the temperature and ``hard`` the run's own loss (cross-entropy, with its label smoothing,
or focal). Both models end in a softmax, and ``log p`` equals the logits up to a constant per row,
so ``softmax(log(p) / T) == softmax(logits / T)`` (as ``mmkeras.evaluation.calibration`` uses): no
logits are needed. The ``T^2`` keeps the soft term's gradients on the hard term's scale as ``T``
grows (Hinton et al., section 2.1). The hard term is the mean over the labelled examples, so that
``alpha`` weighs the two terms the same whatever share of the batch has labels.

``Distiller`` is the model ``fit`` trains: ``call`` is the student's main output, ``compute_loss``
runs the frozen teacher in inference mode on the same (augmented) batch, weighted metrics count
labelled examples only, and its checkpoint (``save_weights`` / ``load_weights``) is the student's. It uses
``keras.ops`` only, so it trains on the TensorFlow and JAX backends.

Example:
    >>> import numpy as np
    >>> labels = np.array([[1.0, 0.0], [0.0, 0.0]], "float32")      # the second row has no label
    >>> student = np.array([[0.6, 0.4], [0.5, 0.5]], "float32")
    >>> teacher = np.array([[0.9, 0.1], [0.5, 0.5]], "float32")
    >>> hard_only = DistillationLoss(temperature=2.0, alpha=0.0)
    >>> round(float(hard_only((labels, teacher), student)), 4), round(float(-np.log(0.6)), 4)
    (0.5108, 0.5108)
    >>> soft_only = DistillationLoss(temperature=1.0, alpha=1.0)    # KL of row 1; row 2 agrees (0)
    >>> kl = 0.9 * np.log(0.9 / 0.6) + 0.1 * np.log(0.1 / 0.4)
    >>> round(float(soft_only((labels, teacher), student)), 4) == round(kl / 2, 4)
    True

Reference:
    Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network", 2015
    (https://arxiv.org/abs/1503.02531).
"""

from __future__ import annotations

import keras
from keras import ops

from mmkeras.models.outputs import PROBABILITIES


def main_output(output):
    """A model's class probabilities: its ``probabilities`` output when it returns a dict."""
    if isinstance(output, dict):
        return output[PROBABILITIES]
    return output[0] if isinstance(output, (list, tuple)) else output


def tempered_log_probabilities(probabilities, temperature: float):
    """``log softmax(log(p) / T)`` per row: the log of ``p`` softened (``T > 1``) or sharpened."""
    log_p = ops.log(ops.clip(probabilities, keras.config.epsilon(), 1.0))
    return ops.log_softmax(log_p / temperature, axis=-1)


class DistillationLoss(keras.losses.Loss):
    """The soft-target loss above; ``y_true`` is ``(one-hot labels, teacher probabilities)``.

    Args:
        temperature: ``T > 0``: both distributions are softened by it before the KL divergence.
        alpha: the soft term's weight in [0, 1]; the hard term gets ``1 - alpha``.
        hard_loss: a Keras loss on one-hot labels (default ``CategoricalCrossentropy()``); only its
            per-example values are used (its ``call``), averaged over the labelled examples.
        teacher_temperature: ``T_c``, the teacher's calibration temperature: its soft targets are
            ``softmax(log t / (T_c * T))``, the calibrated teacher softened by ``T`` (1: the raw teacher).

    Call arguments:
        y_true: ``(labels, teacher)``, both ``(batch, classes)``: one-hot labels (an all-zero row for
            an example without a label) and the teacher's probabilities.
        y_pred: the student's probabilities, ``(batch, classes)``.
        sample_weight: optional per-example weights (class weights), as for any Keras loss.
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.7, hard_loss=None, teacher_temperature: float = 1.0,
                 name="distillation", **kwargs):
        if not (temperature > 0 and teacher_temperature > 0):
            raise ValueError(f"temperature and teacher_temperature must be > 0, got {temperature!r} and "
                             f"{teacher_temperature!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        super().__init__(name=name, **kwargs)
        self.temperature, self.alpha, self.teacher_temperature = float(temperature), float(alpha), float(teacher_temperature)
        self.hard_loss = hard_loss if hard_loss is not None else keras.losses.CategoricalCrossentropy()

    def call(self, y_true, y_pred):
        labels, teacher = y_true
        teacher_log = ops.stop_gradient(tempered_log_probabilities(teacher, self.temperature * self.teacher_temperature))
        student_log = tempered_log_probabilities(y_pred, self.temperature)
        soft = ops.sum(ops.exp(teacher_log) * (teacher_log - student_log), axis=-1) * self.temperature**2
        labelled = ops.cast(ops.sum(labels, axis=-1) > 0, y_pred.dtype)
        share = ops.cast(ops.shape(labelled)[0], y_pred.dtype) / ops.maximum(ops.sum(labelled), 1.0)
        hard = self.hard_loss.call(labels, y_pred) * labelled * share  # the batch mean is over labelled rows
        return self.alpha * soft + (1.0 - self.alpha) * hard

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature, "alpha": self.alpha,
                "hard_loss": keras.losses.serialize(self.hard_loss), "teacher_temperature": self.teacher_temperature}

    @classmethod
    def from_config(cls, config):
        return cls(**{**config, "hard_loss": keras.losses.deserialize(config["hard_loss"])})


class Distiller(keras.Model):
    """The model ``fit`` trains to distil ``teacher`` into ``student`` (both take the same inputs).

    Args:
        student: the model being trained; its output is class probabilities.
        teacher: a trained model; frozen here and called with ``training=False``.
        loss: the ``DistillationLoss``. Compile the ``Distiller`` without a ``loss``, and give its
            metrics as ``weighted_metrics``: those are the ones that skip the unlabelled examples.

    Call arguments:
        inputs: the feature dict both models take.
        training: the student's training flag (dropout, augmentation layers).

    Example:
        >>> import numpy as np
        >>> def classifier(width):
        ...     inputs = keras.Input((3,), name="x")
        ...     hidden = keras.layers.Dense(width, activation="relu")(inputs)
        ...     return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(hidden))
        >>> student, teacher = classifier(2), classifier(8)
        >>> distiller = Distiller(student, teacher, DistillationLoss(temperature=2.0, alpha=0.5))
        >>> distiller.compile(optimizer="adam", weighted_metrics=["accuracy"])
        >>> x, y = np.ones((4, 3), "float32"), np.eye(2, dtype="float32")[[0, 1, 0, 1]]
        >>> history = distiller.fit(x, y, epochs=1, verbose=0).history
        >>> sorted(history), len(distiller.trainable_weights) == len(student.trainable_weights)
        (['accuracy', 'loss'], True)
    """

    def __init__(self, student, teacher, loss: DistillationLoss, **kwargs):
        super().__init__(**kwargs)
        self.student, self.teacher, self.distillation_loss = student, teacher, loss
        self.teacher.trainable = False

    @property
    def output_names(self) -> list:
        """One output, as the student's main one (what ``mmkeras.training.fit_data`` targets)."""
        return [PROBABILITIES]

    def call(self, inputs, training=False):
        return main_output(self.student(inputs, training=training))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        teacher = main_output(self.teacher(x, training=False))
        loss = self.distillation_loss((y, teacher), y_pred, sample_weight)
        for extra in self.losses:  # the student's own added losses, as Model.compute_loss counts them
            loss = loss + ops.cast(ops.sum(extra), loss.dtype)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        labelled = ops.cast(ops.sum(y, axis=-1) > 0, "float32")  # an unlabelled example scores nothing
        weight = labelled if sample_weight is None else labelled * ops.cast(sample_weight, "float32")
        return super().compute_metrics(x, y, y_pred, weight)

    def save_weights(self, filepath, overwrite=True, **kwargs):
        """The student's weights: a distillation's checkpoint is its student (the teacher never changes)."""
        return self.student.save_weights(filepath, overwrite=overwrite, **kwargs)

    def load_weights(self, filepath, **kwargs):
        """Load a checkpoint written by ``save_weights`` into the student."""
        return self.student.load_weights(filepath, **kwargs)
