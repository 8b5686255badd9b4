"""What a run minimizes and how: the loss, the optimizer with its schedule, and class weights.

Example:
    >>> balanced_class_weights([0, 0, 0, 1], 2)
    [0.6666666666666666, 2.0]
"""

from __future__ import annotations


def build_loss(train_config):
    """Cross-entropy (with label smoothing) or focal loss, on one-hot labels."""
    import keras

    if train_config.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            gamma=train_config.focal_gamma, label_smoothing=train_config.label_smoothing
        )
    return keras.losses.CategoricalCrossentropy(label_smoothing=train_config.label_smoothing)


def build_schedule(train_config, steps_per_epoch: int):
    """The learning rate: a float, or (``schedule: cosine``) optional linear warm-up then cosine decay
    over all planned steps, as a ``LearningRateSchedule`` of the optimizer's iteration count."""
    import keras

    total = max(1, train_config.epochs * steps_per_epoch)
    warmup = int(train_config.warmup_epochs * steps_per_epoch)
    rate = train_config.learning_rate
    if train_config.schedule != "cosine":
        return rate
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate,
        decay_steps=max(1, total - warmup),
        warmup_target=rate if warmup else None,
        warmup_steps=warmup,
    )


def build_optimizer(train_config, steps_per_epoch: int):
    """AdamW/Adam/SGD on ``build_schedule``'s rate, with gradient clipping.

    The schedule reads the optimizer's iteration count, which the run backup restores: a resumed
    run continues the schedule where the backup was taken.
    """
    import keras

    rate = build_schedule(train_config, steps_per_epoch)
    clip = {"clipnorm": train_config.clipnorm} if train_config.clipnorm else {}
    if train_config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=rate, weight_decay=train_config.weight_decay, **clip)
    if train_config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate, **clip)
    return keras.optimizers.SGD(learning_rate=rate, momentum=0.9, **clip)


def balanced_class_weights(label_ids, num_classes: int) -> list[float]:
    """``n / (k * count_c)`` per class (scikit-learn's "balanced"); absent classes get 0."""
    counts = [0] * num_classes
    for label in label_ids:
        counts[int(label)] += 1
    total = sum(counts)
    return [total / (num_classes * c) if c else 0.0 for c in counts]
