"""``build_model``: a ``ModelConfig`` and a fitted preprocessor -> a Functional ``keras.Model``.

The model takes the pipeline's feature dict as is: for each column ``c`` an input named ``c``
(shape ``spec.shape``, dtype ``spec.dtype``) and one named ``c_present`` (float32 scalar). Data
flows: each column's encoder -> presence flags stacked to ``(batch, M)`` (randomly hidden during
training when ``modality_dropout > 0``) -> the fusion -> the head, whose output is named
``probabilities``. With ``model.head.auxiliary: true`` the model outputs a dict
``{"probabilities", "aux_<column>", ...}``; compile it with ``loss_weights(...)``.

Example:
    >>> from dataclasses import dataclass
    >>> import numpy as np
    >>> from mmkeras.config import ModelConfig
    >>> from mmkeras.data.schema import FeatureSpec
    >>> @dataclass
    ... class Preprocessor:
    ...     input_specs: list
    ...     num_classes: int = 2
    ...     class_names: tuple = ("no", "yes")
    >>> specs = [FeatureSpec("text", "text", (8,), "int32", vocab_size=20),
    ...          FeatureSpec("image", "image", (16, 16, 1), "float32")]
    >>> model = build_model(ModelConfig(fusion={"type": "gated", "output_dim": 8}), Preprocessor(specs))
    >>> batch = {"text": np.ones((2, 8), "int32"), "text_present": np.ones(2, "float32"),
    ...          "image": np.zeros((2, 16, 16, 1), "float32"), "image_present": np.zeros(2, "float32")}
    >>> model.predict(batch, verbose=0).shape
    (2, 2)
"""

from __future__ import annotations

import keras
from keras import ops

from mmkeras import registry
from mmkeras.errors import ConfigError
from mmkeras.encoders.base import EncoderOutput, build_encoder, check_settings, encoder_is_frozen
from mmkeras.layers.modality_dropout import ModalityDropout
from mmkeras.models.heads import AUXILIARY_SETTINGS, HEAD_ACTIVATIONS, build_auxiliary_heads
from mmkeras.data.schema import ENCODED_PREFIX
from mmkeras.models.outputs import PROBABILITIES, aux_name

#: The sub-model holding everything after the frozen encoders (see ``frozen_encodings``).
HEAD_NAME = "multimodal_head"
#: ``output_dim`` of the fusion when ``model.fusion`` does not set one.
DEFAULT_FUSION_OUTPUT_DIM = 128
#: The fusion contract allows 1 to 3 modalities.
MAX_COLUMNS = 3


def _component(kind: str, settings: dict, where: str):
    name = settings.get("type")
    try:
        return name, registry.get(kind, name)
    except ValueError as error:
        raise ConfigError(f"{where}.type: {error}") from None


def _check_columns(model_config: ModelConfig, specs) -> None:
    if not 1 <= len(specs) <= MAX_COLUMNS:
        raise ConfigError(
            f"data.features has {len(specs)} columns; a model takes 1 to {MAX_COLUMNS} feature columns"
        )
    columns = [spec.column for spec in specs]
    for column in model_config.encoders:
        if column not in columns:
            raise ConfigError(
                f"model.encoders.{column} names no feature column; columns: {', '.join(columns)}"
            )
    if not 0.0 <= model_config.modality_dropout < 1.0:
        raise ConfigError(f"model.modality_dropout must be in [0, 1); got {model_config.modality_dropout!r}")


def _stack_presence(flags):
    flags = [keras.layers.Reshape((1,), name=f"{flag.name}_flag")(flag) for flag in flags]
    if len(flags) == 1:
        return flags[0]
    return keras.layers.Concatenate(name="presence")(flags)


def _build_fusion(model_config: ModelConfig, num_classes: int):
    settings = {"output_dim": DEFAULT_FUSION_OUTPUT_DIM, **model_config.fusion}
    name, fusion_class = _component("fusion", settings, "model.fusion")
    values = check_settings(fusion_class, settings, "model.fusion", reserved=("name", "num_classes"))
    if getattr(fusion_class, "outputs_logits", False):
        values["num_classes"] = num_classes
    try:
        return fusion_class(name=f"{name}_fusion", **values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"model.fusion ({name}): {error}") from None


def _token_masks(encodings):
    """The token masks, or None when no encoder has one (a fusion then treats every step as real)."""
    if all(e.token_mask is None for e in encodings):
        return None
    return [
        e.token_mask if e.token_mask is not None else ops.ones_like(e.tokens[:, :, 0], dtype="bool")
        for e in encodings
    ]


def build_model(model_config: ModelConfig, preprocessor) -> keras.Model:
    """The multimodal classifier the config describes, sized by the preprocessor.

    Args:
        model_config: the ``model`` section: ``encoders`` per column (default per modality:
            text ``embedding``, image ``conv2d``, audio ``lstm``), ``fusion`` (``output_dim``
            defaults to 128), ``head`` and ``modality_dropout``.
        preprocessor: anything with ``input_specs`` (one ``FeatureSpec`` per column, 1 to 3),
            ``num_classes`` and ``class_names``.

    Returns:
        An uncompiled Functional model. Inputs: ``{column, column_present}`` per column.
        Output: ``probabilities`` ``(batch, num_classes)`` float32, or a dict with it and the
        ``aux_<column>`` outputs when ``model.head.auxiliary`` is true.

    Raises:
        ConfigError: naming the key (``model.encoders.text.units``, ``model.fusion.type``, ...).
    """
    specs = list(preprocessor.input_specs)
    num_classes = int(preprocessor.num_classes)
    _check_columns(model_config, specs)
    inputs = {}
    for spec in specs:
        inputs[spec.column] = keras.Input(spec.shape, dtype=spec.dtype, name=spec.column)
        inputs[spec.presence_key] = keras.Input((), dtype="float32", name=spec.presence_key)
    fusion = _build_fusion(model_config, num_classes)
    frozen = [spec for spec in specs if encoder_is_frozen(spec, model_config.encoders.get(spec.column))]
    if not frozen:
        encodings = [build_encoder(inputs[spec.column], spec, model_config.encoders.get(spec.column)) for spec in specs]
        return _assemble(model_config, specs, inputs, encodings, fusion, num_classes)
    # A frozen encoder becomes a sub-model of its own, and everything after it a head that can be fed
    # its cached outputs instead (mmkeras.training.frozen_cache); the saved model computes the same.
    head_inputs = {name: tensor for name, tensor in inputs.items() if name not in {s.column for s in frozen}}
    fed = dict(head_inputs)
    encodings = []
    for spec in specs:
        settings = model_config.encoders.get(spec.column)
        if spec not in frozen:
            encodings.append(build_encoder(inputs[spec.column], spec, settings))
            continue
        own_input = keras.Input(spec.shape, dtype=spec.dtype, name=spec.column)
        tensors = _read_downstream(build_encoder(own_input, spec, settings), fusion.uses_tokens)
        names = [encoded_name(spec.column, i) for i in range(len(tensors))]
        extractor = keras.Model(own_input, dict(zip(names, tensors)), name=extractor_name(spec.column))
        cut = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in zip(names, tensors)}
        head_inputs.update(cut)
        fed.update(extractor(inputs[spec.column]))
        encodings.append(EncoderOutput(*list(cut.values()) + [None] * (3 - len(cut))))
    head = _assemble(model_config, specs, head_inputs, encodings, fusion, num_classes, name=HEAD_NAME)
    outputs = head(fed)
    if not isinstance(outputs, dict):
        outputs = keras.layers.Identity(name=PROBABILITIES)(outputs)
    return keras.Model(inputs=inputs, outputs=outputs, name="multimodal_classifier")


def _read_downstream(encoding, uses_tokens: bool) -> list:
    """The tensors of an encoding the rest of the model reads (tokens and mask only for attention)."""
    if not uses_tokens:
        return [encoding.vector]
    return [encoding.vector, encoding.tokens] + ([encoding.token_mask] if encoding.token_mask is not None else [])


def _assemble(model_config, specs, inputs: dict, encodings: list, fusion, num_classes: int,
              name: str = "multimodal_classifier") -> keras.Model:
    """Presence flags, fusion and head(s) on the encodings: the model from ``inputs``."""
    presence = _stack_presence([inputs[spec.presence_key] for spec in specs])
    if model_config.modality_dropout:
        presence = ModalityDropout(model_config.modality_dropout, name="modality_dropout")(presence)
    vectors = [e.vector for e in encodings]
    if fusion.uses_tokens:
        fused = fusion(vectors, presence, tokens=[e.tokens for e in encodings], token_masks=_token_masks(encodings))
    else:
        fused = fusion(vectors, presence)

    head_settings = dict(model_config.head)
    head_name, head_factory = _component("head", head_settings, "model.head")
    values = check_settings(head_factory, head_settings, "model.head", extra=AUXILIARY_SETTINGS)
    auxiliary = values.pop("auxiliary", False)
    values.pop("auxiliary_weight", None)
    probabilities = head_factory(fused, num_classes, bool(fusion.outputs_logits), **values)

    outputs = probabilities
    if auxiliary:
        activation = HEAD_ACTIVATIONS.get(head_name, "softmax")
        aux = build_auxiliary_heads(vectors, [spec.column for spec in specs], num_classes, activation)
        outputs = {PROBABILITIES: probabilities, **aux}
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def encoded_name(column: str, index: int) -> str:
    """The head input that takes output ``index`` of ``column``'s frozen encoder."""
    return f"{encoded_prefix(column)}{index}"


def encoded_prefix(column: str) -> str:
    """What the names of ``column``'s head inputs for its frozen encoder's outputs start with."""
    return f"{ENCODED_PREFIX}{column}__"


def extractor_name(column: str) -> str:
    """The sub-model that computes ``column``'s frozen encoder."""
    return f"{column}_frozen_encoder"


def frozen_encodings(model):
    """``(head, {column: extractor})`` of a model whose frozen encoders ``build_model`` cut off, or
    None. An extractor maps the column's input to the head inputs ``encoded_name(column, i)``; the
    head (``HEAD_NAME``) takes those, the other columns and the presence flags, and shares every
    weight with the model."""
    names = {layer.name for layer in model.layers}
    if HEAD_NAME not in names:
        return None
    columns = [name for name in model.input if extractor_name(name) in names]
    return model.get_layer(HEAD_NAME), {column: model.get_layer(extractor_name(column)) for column in columns}


def loss_weights(model_config: ModelConfig, preprocessor):
    """``compile(loss_weights=...)`` for the model ``build_model`` makes; None without auxiliary heads.

    The main output weighs 1.0 and every ``aux_<column>`` weighs ``model.head.auxiliary_weight``
    (default 0.3, as in GoogLeNet's auxiliary classifiers). An auxiliary output sees its encoder
    whether or not the column is present, so its per-example loss should also be weighted by
    ``<column>_present`` (a ``sample_weight`` dict keyed like the outputs).

    Example:
        >>> from types import SimpleNamespace
        >>> from mmkeras.config import ModelConfig
        >>> from mmkeras.data.schema import FeatureSpec
        >>> pre = SimpleNamespace(input_specs=[FeatureSpec("text", "text", (8,), "int32", 20)])
        >>> loss_weights(ModelConfig(head={"type": "softmax", "auxiliary": True}), pre)
        {'probabilities': 1.0, 'aux_text': 0.3}
    """
    head = {**AUXILIARY_SETTINGS, **model_config.head}
    if not head["auxiliary"]:
        return None
    return {PROBABILITIES: 1.0, **{aux_name(s.column): float(head["auxiliary_weight"]) for s in preprocessor.input_specs}}
