"""The pipeline's ``(features, label)`` batches turned into what ``fit`` takes.

``training_targets`` one-hot encodes the label for every model output (and weights examples by
class, or by presence for auxiliary heads); ``shard_by_data`` marks a dataset for multi-worker
sharding by example; ``class_weights`` weights classes by their counts in the train split.

Example:
    >>> import tensorflow as tf
    >>> class OneOutput:
    ...     output_names = ["probabilities"]
    >>> batches = tf.data.Dataset.from_tensor_slices(({"x": [1.0, 2.0]}, [0, 1])).batch(2)
    >>> features, targets = next(iter(training_targets(batches, OneOutput(), 2)))
    >>> targets.numpy().tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations


def train_label_ids(config, preprocessor) -> list[int]:
    """Class ids of the training rows (the ``data.label_fraction`` subset), read from the manifest's
    label column (no file decoding)."""
    from mmkeras.data.rows import LABEL_KEY, labelled_rows, split_path

    rows, _ = preprocessor.rows(split_path(config, "train"), columns=[], keep_rows=labelled_rows(config))
    batches = rows.map(lambda row: preprocessor.encode_label(row[LABEL_KEY])).batch(4096)
    return [int(i) for batch in batches for i in batch.numpy() if i >= 0]


def class_weights(config, preprocessor) -> list[float] | None:
    """``train.class_weight: balanced``: per-class weights from the train split's label counts."""
    from mmkeras.training.objective import balanced_class_weights

    if config.train.class_weight != "balanced":
        return None
    return balanced_class_weights(train_label_ids(config, preprocessor), preprocessor.num_classes)


def training_targets(dataset, model, num_classes: int, class_weights=None):
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


def shard_by_data(dataset):
    """Multi-worker sharding by example (AutoShardPolicy.DATA): our manifests are not split into files."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
