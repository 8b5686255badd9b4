"""Speech encoders: audio features ``(batch, frames, bins)`` float32 -> ``EncoderOutput``.

``frames x bins`` is what the audio front end produced (log-mel, MFCC, STFT magnitudes), or
``(samples, 1)`` for the waveform front end; for raw waveforms ``conv1d`` with ``strides: 4``
(or more) is the sensible choice, since recurrent layers over thousands of samples are slow.
Tokens are the frames (after any downsampling) with no mask. Registered as ``audio_encoder``:
``conv1d`` (the default: on digits and avdigits it beat ``lstm`` alone and with images, at about half
the training time, 3 seeds, docs/results.md), ``crnn``, ``lstm``.

Example:
    >>> import keras
    >>> from mmkeras.data.schema import FeatureSpec
    >>> spec = FeatureSpec(column="speech", modality="audio", shape=(12, 8), dtype="float32")
    >>> features = keras.Input(spec.shape, name="speech")
    >>> out = build_crnn(features, spec, name="speech", filters=[4, 8], units=6)
    >>> tuple(out.vector.shape), tuple(out.tokens.shape)
    ((None, 6), (None, 3, 6))
"""

from __future__ import annotations

import keras

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.encoders.base import EncoderOutput, check_positive, check_rate


def _check_audio_spec(spec, name: str) -> None:
    if len(spec.shape) != 2:
        raise ConfigError(
            f"the audio encoder of column {name!r} needs features of shape (frames, bins); got {spec.shape}"
        )


def _recurrent(units: int, bidirectional: bool, dropout: float, cell: str, prefix: str):
    layer_class = keras.layers.LSTM if cell == "lstm" else keras.layers.GRU
    layer = layer_class(units, return_sequences=True, dropout=dropout, name=f"{prefix}{cell}")
    if bidirectional:
        return keras.layers.Bidirectional(layer, name=f"{prefix}bi{cell}")
    return layer


@registry.register("audio_encoder", "lstm")
def build_lstm(
    inputs,
    spec,
    *,
    name: str,
    units: int = 64,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> EncoderOutput:
    """(Bi)LSTMs over the frames; the vector is the mean of the last layer's outputs.

    Args:
        units: LSTM units (per direction); width ``units``, or ``2 * units`` when bidirectional.
        num_layers: stacked recurrent layers.
        bidirectional: read the frames both ways.
        dropout: input dropout of every LSTM during training.
    """
    _check_audio_spec(spec, name)
    check_positive(name, "units", units)
    check_positive(name, "num_layers", num_layers)
    check_rate(name, "dropout", dropout)
    x = inputs
    for index in range(num_layers):
        x = _recurrent(units, bidirectional, dropout, "lstm", f"{name}_{index + 1}_")(x)
    vector = keras.layers.GlobalAveragePooling1D(name=f"{name}_average_pool")(x)
    return EncoderOutput(vector, x, None)


@registry.register("audio_encoder", "crnn")
def build_crnn(
    inputs,
    spec,
    *,
    name: str,
    filters: list = (16, 32),
    kernel_size: int = 3,
    units: int = 64,
    bidirectional: bool = False,
    dropout: float = 0.0,
) -> EncoderOutput:
    """Convolutional recurrent network: Conv2D blocks over the ``(frames, bins, 1)`` image, then a GRU.

    Each block is Conv2D -> batch norm -> ReLU -> 2x2 max pooling (1 along an axis already
    of size 1); the remaining bins and channels of each frame feed a GRU over frames; the vector
    is the mean of its outputs.

    Args:
        filters: one convolution block per entry.
        kernel_size: square kernel of every convolution.
        units: GRU units (per direction).
        bidirectional: read the frames both ways.
        dropout: input dropout of the GRU during training.

    Reference:
        Choi et al., "Convolutional Recurrent Neural Networks for Music Classification", 2016.
        https://arxiv.org/abs/1609.04243
    """
    _check_audio_spec(spec, name)
    check_positive(name, "filters", filters)
    check_positive(name, "kernel_size", kernel_size)
    check_positive(name, "units", units)
    check_rate(name, "dropout", dropout)
    frames, bins = spec.shape
    x = keras.layers.Reshape((frames, bins, 1), name=f"{name}_as_image")(inputs)
    for index, width in enumerate(filters):
        prefix = f"{name}_block{index + 1}"
        x = keras.layers.Conv2D(width, kernel_size, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
        pool = (2 if x.shape[1] > 1 else 1, 2 if x.shape[2] > 1 else 1)
        x = keras.layers.MaxPooling2D(pool, padding="same", name=f"{prefix}_pool")(x)
    _, frames, bins, depth = x.shape
    x = keras.layers.Reshape((frames, bins * depth), name=f"{name}_frames")(x)
    x = _recurrent(units, bidirectional, dropout, "gru", f"{name}_")(x)
    vector = keras.layers.GlobalAveragePooling1D(name=f"{name}_average_pool")(x)
    return EncoderOutput(vector, x, None)


@registry.register("audio_encoder", "conv1d")
def build_speech_conv1d(
    inputs,
    spec,
    *,
    name: str,
    filters: list = (32, 64),
    kernel_size: int = 5,
    strides: int = 1,
    dropout: float = 0.0,
) -> EncoderOutput:
    """1-D convolutions over frames (bins as channels): Conv1D -> batch norm -> ReLU -> MaxPool(2).

    The vector is the global average of the last block; its width is ``filters[-1]``.

    Args:
        filters: one block per entry.
        kernel_size: width (in frames) of every convolution.
        strides: stride of the first convolution (use 4 or more for raw waveforms).
        dropout: rate on the vector during training.
    """
    _check_audio_spec(spec, name)
    check_positive(name, "filters", filters)
    check_positive(name, "kernel_size", kernel_size)
    check_positive(name, "strides", strides)
    check_rate(name, "dropout", dropout)
    x = inputs
    for index, width in enumerate(filters):
        prefix = f"{name}_block{index + 1}"
        x = keras.layers.Conv1D(
            width, kernel_size, strides=strides if index == 0 else 1, padding="same", use_bias=False,
            name=f"{prefix}_conv",
        )(x)
        x = keras.layers.BatchNormalization(name=f"{prefix}_bn")(x)
        x = keras.layers.Activation("relu", name=f"{prefix}_relu")(x)
        if x.shape[1] > 1:
            x = keras.layers.MaxPooling1D(2, padding="same", name=f"{prefix}_pool")(x)
    vector = keras.layers.GlobalAveragePooling1D(name=f"{name}_average_pool")(x)
    if dropout:
        vector = keras.layers.Dropout(dropout, name=f"{name}_dropout")(vector)
    return EncoderOutput(vector, x, None)
