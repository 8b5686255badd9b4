"""Text encoders: token ids ``(batch, sequence_length)`` int32 (0 = padding) -> ``EncoderOutput``.

Every encoder derives the padding mask from the ids (``ids != 0``), returns it as
``token_mask`` and pools only over real tokens, so padding never changes the vector.

Registered as ``text_encoder``: ``embedding`` (the default), ``bilstm``, ``conv1d``,
``transformer``, ``hub``.

Example:
    >>> import keras
    >>> from mmkeras.data.schema import FeatureSpec
    >>> spec = FeatureSpec(column="review", modality="text", shape=(8,), dtype="int32", vocab_size=50)
    >>> ids = keras.Input(spec.shape, dtype="int32", name="review")
    >>> out = build_bilstm(ids, spec, name="review", units=4)
    >>> tuple(out.vector.shape), tuple(out.tokens.shape), tuple(out.token_mask.shape)
    ((None, 8), (None, 8, 8), (None, 8))
"""

from __future__ import annotations

from typing import Optional

import keras
import keras_hub
from keras import ops

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.encoders.base import EncoderOutput, check_choice, check_positive, check_rate
from mmkeras.layers.masked_pooling import MaskedGlobalPooling
from mmkeras.layers.transformer_block import TransformerBlock


def _check_text_spec(spec, name: str) -> None:
    if len(spec.shape) != 1 or not spec.vocab_size:
        raise ConfigError(
            f"the text encoder of column {name!r} needs token ids of shape (sequence_length,) and a "
            f"vocab_size; got shape={spec.shape}, vocab_size={spec.vocab_size}"
        )


def _embed(ids, spec, name: str, embedding_dim: int):
    """Token embeddings and the padding mask (True at real tokens)."""
    _check_text_spec(spec, name)
    check_positive(name, "embedding_dim", embedding_dim)
    mask = ops.not_equal(ids, 0)
    tokens = keras.layers.Embedding(spec.vocab_size, embedding_dim, name=f"{name}_embedding")(ids)
    return tokens, mask


def _pool(tokens, mask, name: str, mode: str):
    return MaskedGlobalPooling(mode=mode, name=f"{name}_{mode}_pool")(tokens, mask=mask)


@registry.register("text_encoder", "embedding")
def build_embedding(
    inputs, spec, *, name: str, embedding_dim: int = 64, pooling: str = "mean", dropout: float = 0.0
) -> EncoderOutput:
    """Bag of embeddings: ``Embedding`` then masked mean (or max) pooling over real tokens.

    Args:
        inputs: ``(batch, sequence_length)`` int32 token ids, 0 = padding.
        spec: the column's ``FeatureSpec`` (``vocab_size`` sizes the table).
        name: prefix of the layer names (the column).
        embedding_dim: width of the embeddings, the vector and the tokens.
        pooling: ``"mean"`` or ``"max"`` over the real tokens.
        dropout: rate applied to the embeddings during training.
    """
    check_choice(name, "pooling", pooling, ("mean", "max"))
    tokens, mask = _embed(inputs, spec, name, embedding_dim)
    if check_rate(name, "dropout", dropout):
        tokens = keras.layers.Dropout(dropout, name=f"{name}_dropout")(tokens)
    return EncoderOutput(_pool(tokens, mask, name, pooling), tokens, mask)


@registry.register("text_encoder", "bilstm")
def build_bilstm(
    inputs,
    spec,
    *,
    name: str,
    embedding_dim: int = 64,
    units: int = 64,
    num_layers: int = 1,
    dropout: float = 0.0,
) -> EncoderOutput:
    """Embeddings then ``num_layers`` bidirectional LSTMs that skip padding; masked mean pooling.

    Args:
        embedding_dim: width of the embeddings.
        units: LSTM units per direction; vector and tokens are ``2 * units`` wide.
        num_layers: stacked bidirectional LSTMs.
        dropout: input dropout of every LSTM during training.
    """
    check_positive(name, "units", units)
    check_positive(name, "num_layers", num_layers)
    check_rate(name, "dropout", dropout)
    tokens, mask = _embed(inputs, spec, name, embedding_dim)
    for index in range(num_layers):
        lstm = keras.layers.LSTM(units, return_sequences=True, dropout=dropout)
        tokens = keras.layers.Bidirectional(lstm, name=f"{name}_bilstm{index + 1}")(tokens, mask=mask)
    return EncoderOutput(_pool(tokens, mask, name, "mean"), tokens, mask)


@registry.register("text_encoder", "conv1d")
def build_text_conv1d(
    inputs,
    spec,
    *,
    name: str,
    embedding_dim: int = 64,
    filters: list = (64, 64),
    kernel_size: int = 3,
    pooling: str = "max",
    dropout: float = 0.0,
) -> EncoderOutput:
    """Embeddings then same-length ``Conv1D`` layers (n-gram detectors); masked max (or mean) pooling.

    Args:
        embedding_dim: width of the embeddings.
        filters: one ``Conv1D`` per entry; the last one is the width of vector and tokens.
        kernel_size: n-gram width of every convolution.
        pooling: ``"max"`` or ``"mean"`` over the real tokens.
        dropout: rate applied to the embeddings during training.
    """
    check_positive(name, "filters", filters)
    check_positive(name, "kernel_size", kernel_size)
    check_choice(name, "pooling", pooling, ("mean", "max"))
    tokens, mask = _embed(inputs, spec, name, embedding_dim)
    if check_rate(name, "dropout", dropout):
        tokens = keras.layers.Dropout(dropout, name=f"{name}_dropout")(tokens)
    for index, width in enumerate(filters):
        tokens = keras.layers.Conv1D(
            width, kernel_size, padding="same", activation="relu", name=f"{name}_conv{index + 1}"
        )(tokens)
    return EncoderOutput(_pool(tokens, mask, name, pooling), tokens, mask)


@registry.register("text_encoder", "transformer")
def build_transformer(
    inputs,
    spec,
    *,
    name: str,
    embedding_dim: int = 64,
    num_heads: int = 2,
    intermediate_dim: int = 128,
    num_layers: int = 1,
    dropout: float = 0.1,
) -> EncoderOutput:
    """A small Transformer encoder: token + learned position embeddings, post-norm blocks.

    Positions come from ``keras_hub.layers.PositionEmbedding``. Each block is a post-norm
    ``TransformerBlock``: multi-head self-attention over real tokens (the padding is the key
    padding mask), then a GELU feed-forward network, each with dropout, a residual and layer
    norm; that block's docstring says why it is not KerasHub's ``TransformerEncoder`` here. The
    vector is the masked mean of the last block's outputs.

    Args:
        embedding_dim: model width (divisible by ``num_heads``).
        num_heads: attention heads.
        intermediate_dim: hidden width of the feed-forward network.
        num_layers: stacked blocks.
        dropout: rate in attention outputs and feed-forward outputs during training.

    Reference:
        Vaswani et al., "Attention Is All You Need", 2017. https://arxiv.org/abs/1706.03762
    """
    check_positive(name, "num_heads", num_heads)
    check_positive(name, "intermediate_dim", intermediate_dim)
    check_positive(name, "num_layers", num_layers)
    check_rate(name, "dropout", dropout)
    if embedding_dim % num_heads:
        raise ConfigError(
            f"model.encoders.{name}.embedding_dim={embedding_dim} must be divisible by "
            f"model.encoders.{name}.num_heads={num_heads}"
        )
    tokens, mask = _embed(inputs, spec, name, embedding_dim)
    positions = keras_hub.layers.PositionEmbedding(spec.shape[0], name=f"{name}_position_embedding")(tokens)
    x = keras.layers.Add(name=f"{name}_embeddings")([tokens, positions])
    for index in range(num_layers):
        block = TransformerBlock(
            num_heads, intermediate_dim, dropout=dropout, activation="gelu", name=f"{name}_block{index + 1}"
        )
        x = block(x, key_padding_mask=mask)
    return EncoderOutput(_pool(x, mask, name, "mean"), x, mask)


def _signature_dtype(function) -> Optional[str]:
    """The dtype of the endpoint's (first) input, or None when the SavedModel does not say."""
    for attribute in ("structured_input_signature", "input_signature"):
        signature = getattr(function, attribute, None)
        if signature:
            for spec in keras.tree.flatten(signature):
                if hasattr(spec, "dtype"):
                    return spec.dtype.name
    return None


def _hub_outputs(outputs, name, keys):
    """``(pooled, sequence)`` from what the endpoint returned (a tensor or a dict of tensors)."""
    pooled_key, sequence_key = keys
    if isinstance(outputs, dict):
        pooled, sequence = outputs.get(pooled_key), outputs.get(sequence_key)
        if pooled is None and sequence is None:
            if len(outputs) != 1:
                raise ConfigError(
                    f"model.encoders.{name}: the SavedModel returns {sorted(outputs)}; set "
                    f"pooled_output_key and/or sequence_output_key to one of them"
                )
            outputs = next(iter(outputs.values()))
        else:
            return pooled, sequence
    rank = len(outputs.shape)
    if rank not in (2, 3):
        raise ConfigError(
            f"model.encoders.{name}: the SavedModel output has shape {tuple(outputs.shape)}; "
            "expected (batch, dim) or (batch, steps, dim)"
        )
    return (outputs, None) if rank == 2 else (None, outputs)


@registry.register("text_encoder", "hub", loads_files=True)
def build_hub(
    inputs,
    spec,
    *,
    name: str,
    handle: str,
    call_endpoint: str = "serving_default",
    trainable: bool = False,
    pooled_output_key: str = "pooled_output",
    sequence_output_key: str = "sequence_output",
) -> EncoderOutput:
    """A TF-Hub style SavedModel text encoder, frozen (default) or fine-tuned.

    The SavedModel receives the column's **token ids** ``(batch, sequence_length)``, cast to the
    integer dtype its endpoint declares; a SavedModel that takes raw strings cannot be used,
    because the pipeline tokenizes text before the model. Its ids must therefore mean what the
    column's vocabulary means (give the preprocessor the SavedModel's vocabulary file).

    The endpoint may return a ``(batch, dim)`` vector, a ``(batch, steps, dim)`` sequence, or a
    dict holding them under ``pooled_output_key`` / ``sequence_output_key`` (the BERT
    convention). Without a sequence, tokens are the vector as one step; without a vector, the
    vector is the masked mean of the sequence over non-padding ids.

    TensorFlow backend only: the layer is a ``keras.layers.TFSMLayer``. A ``.keras`` file of a
    model containing it stores the SavedModel path (not its graph) and loads only with
    ``keras.saving.load_model(path, safe_mode=False)``, since the SavedModel is executable code.

    Args:
        handle: a TF-Hub handle or a local SavedModel folder, resolved by
            ``tensorflow_hub.resolve`` (downloads are cached in ``$TFHUB_CACHE_DIR``).
        call_endpoint: the signature or attribute to call (``serving_default``, ``serve``, ...).
        trainable: fine-tune the SavedModel's trainable variables with the rest of the model.
        pooled_output_key: the dict output used as the vector.
        sequence_output_key: the dict output used as the tokens.
    """
    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"model.encoders.{name}.type='hub' runs a TensorFlow SavedModel and needs "
            f"KERAS_BACKEND=tensorflow (current backend: {keras.backend.backend()!r}); "
            "choose another text encoder (embedding, bilstm, conv1d, transformer) for this backend"
        )
    _check_text_spec(spec, name)
    import tensorflow_hub

    try:
        path = tensorflow_hub.resolve(handle)
        layer = keras.layers.TFSMLayer(
            path, call_endpoint=call_endpoint, trainable=trainable, name=f"{name}_hub", dtype="float32"
        )
    except (OSError, ValueError) as error:
        raise ConfigError(f"model.encoders.{name}.handle={handle!r} could not be loaded: {error}") from None
    input_dtype = _signature_dtype(layer.call_endpoint_fn) or "int32"
    if input_dtype == "string":
        raise ConfigError(
            f"model.encoders.{name}.handle={handle!r} takes strings; the hub encoder feeds token ids, "
            "so use a SavedModel whose endpoint takes int32/int64 ids"
        )
    mask = ops.not_equal(inputs, 0)
    ids = inputs if input_dtype == "int32" else ops.cast(inputs, input_dtype)
    pooled, sequence = _hub_outputs(layer(ids), name, (pooled_output_key, sequence_output_key))
    if sequence is None:
        return EncoderOutput(pooled, ops.expand_dims(pooled, 1), None)
    if sequence.shape[1] != spec.shape[0]:
        # The SavedModel added or dropped steps ([CLS], ...): the ids no longer say which are padding.
        mask = None
    if pooled is None:
        pooled = _pool(sequence, mask, name, "mean")
    return EncoderOutput(pooled, sequence, mask)
