"""``keras_hub``: a pretrained KerasHub backbone as the encoder of a text, image or audio column.

``model.encoders.<column>: {type: keras_hub, preset: HANDLE}``: HANDLE is anything
``keras_hub.models.Backbone.from_preset`` takes (``bert_tiny_en_uncased``, ``kaggle://...``,
``hf://...``) or a local preset directory. The column's preprocessing comes from the same preset
(``mmkeras.data.columns.keras_hub``), so the model input is already the backbone's input: token ids
(the padding mask is ``ids != spec.padding_id``), converted images, or log-mel frames.

What the backbone returns becomes an ``EncoderOutput``: a sequence ``(batch, steps, d)`` (text
tokens, ViT patches, Whisper frames, a CNN's flattened feature map) and a pooled vector
``(batch, d)``: the backbone's own pooled output where it has one (``pooling: auto``), else
``cls`` (the first step), ``mean`` or ``masked_mean`` (real tokens only). Dual encoders (CLIP,
SigLIP) give the tower of the column's modality, projected into their shared embedding space.
A Whisper backbone contributes its encoder half only.

Training: frozen by default (``trainable: false``, run in inference mode through ``InferenceMode``,
so dropout is off and the trainer may cache its outputs); ``trainable: true`` fine-tunes all of it; ``trainable_layers: N``
only the last N blocks; ``lora_rank: R`` adds LoRA adapters (``backbone.enable_lora``), the only new
trainable weights. ``output``: ``both`` (default), ``sequence`` (the vector is pooled from the
sequence), or ``pooled`` (the sequence is the vector as one step: cheaper attention fusions).

Example (not run here: it needs a preset directory; tests/encoders/test_keras_hub.py builds tiny ones):
    build_keras_hub(ids, spec, name="text", preset="presets/bert_tiny", pooling="cls")
"""

from __future__ import annotations

import re
from typing import Optional

import keras
import keras_hub  # importing it registers KerasHub's classes, so keras.models.load_model finds them
from keras import ops

from mmkeras import registry
from mmkeras.encoders.base import EncoderOutput, check_choice, check_positive
from mmkeras.errors import ConfigError
from mmkeras.layers.inference_mode import InferenceMode
from mmkeras.layers.masked_pooling import MaskedGlobalPooling
from mmkeras.presets import preset_error

POOLINGS = ("auto", "cls", "mean", "masked_mean")
OUTPUTS = ("both", "sequence", "pooled")
_BLOCK_ATTRIBUTES = ("transformer_layers", "encoder_transformer_layers", "encoder_layers")
_BLOCK_NAME = re.compile(r"^(stack\d+_block\d+|block\d+[a-z]?)_")


def load_backbone(preset: str, where: str, **kwargs):
    """``keras_hub.models.Backbone.from_preset(preset)``, or a ConfigError naming the handle."""
    try:
        return keras_hub.models.Backbone.from_preset(preset, **kwargs)
    except Exception as error:  # noqa: BLE001 - network, missing files, unknown names: one sentence
        raise preset_error(where, preset, error) from None


def _tower(backbone, modality: str, name: str):
    """``(callable, kind)``: what maps the column input to backbone outputs."""
    if modality == "audio" and "encoder_features" in getattr(backbone, "input", {}):
        # Whisper: an encoder-decoder; a classifier needs only the encoder half.
        encoder = keras.Model(backbone.input["encoder_features"], backbone.output["encoder_sequence_output"],
                              name=f"{name}_backbone_encoder")
        return encoder, "sequence"
    method = {"text": "get_text_embeddings", "image": "get_vision_embeddings"}.get(modality)
    if method and hasattr(backbone, method):  # CLIP / SigLIP: the modality's tower, in the shared space
        return getattr(backbone, method), "embedding"
    return backbone, "backbone"


def backbone_blocks(backbone) -> list:
    """The backbone's blocks in order (transformer layers, ResNet / EfficientNet blocks)."""
    for candidate in [backbone, *backbone.layers]:
        for attribute in _BLOCK_ATTRIBUTES:
            blocks = getattr(candidate, attribute, None)
            if isinstance(blocks, (list, tuple)) and blocks:
                return list(blocks)
    groups: dict = {}
    for layer in backbone.layers:
        match = _BLOCK_NAME.match(layer.name)
        if match:
            groups.setdefault(match.group(1), []).append(layer)
    return list(groups.values())


def _set_trainable(backbone, where: str, trainable: bool, trainable_layers: Optional[int], lora_rank: Optional[int]):
    if lora_rank:
        check_positive(where.rsplit(".", 1)[-1], "lora_rank", lora_rank)
        backbone.enable_lora(lora_rank)  # freezes the adapted kernels ...
        for weight in backbone.trainable_weights:
            if "lora" not in weight.path:
                weight.trainable = False  # ... and here their biases too: only the adapters learn
        return True
    if trainable_layers:
        check_positive(where.rsplit(".", 1)[-1], "trainable_layers", trainable_layers)
        blocks = backbone_blocks(backbone)
        if not blocks:
            raise ConfigError(f"{where}.trainable_layers: {type(backbone).__name__} has no blocks mmkeras can find; "
                              "use trainable: true to fine-tune all of it")
        if trainable_layers > len(blocks):
            raise ConfigError(f"{where}.trainable_layers={trainable_layers} but {type(backbone).__name__} has "
                              f"{len(blocks)} blocks")
        backbone.trainable = False
        for block in blocks[-trainable_layers:]:
            for layer in block if isinstance(block, list) else [block]:
                layer.trainable = True
        return True
    backbone.trainable = bool(trainable)
    return bool(trainable)


def _call(tower, kind: str, inputs, spec, tuned: bool, name: str):
    """Run the tower on the column input: ``(sequence or None, pooled or None, mask or None)``.

    A frozen tower runs inside ``InferenceMode`` (no dropout, whatever ``fit`` asks for)."""
    mask = ops.not_equal(inputs, spec.padding_id) if spec.modality == "text" else None
    if kind == "embedding":  # a method of a dual encoder: made a model, so that it can be wrapped
        own = keras.Input(inputs.shape[1:], dtype=inputs.dtype)
        tower = keras.Model(own, tower(own), name=f"{name}_tower")
    if not tuned:
        tower = InferenceMode(tower, name=f"{name}_frozen")
    if kind == "embedding":
        return None, tower(inputs), None
    if spec.modality == "text" and kind == "backbone":
        names = {t.name for t in keras.tree.flatten((tower.layer if not tuned else tower).input)}
        values = {"token_ids": inputs, "padding_mask": mask, "segment_ids": ops.zeros_like(inputs)}
        outputs = tower({key: value for key, value in values.items() if key in names})
    else:
        outputs = tower(inputs)
    pooled = None
    if isinstance(outputs, dict):
        pooled = outputs.get("pooled_output")
        outputs = outputs.get("sequence_output", outputs.get("encoder_sequence_output"))
    if len(outputs.shape) == 4:  # a CNN's feature map: its cells are the sequence
        outputs = keras.layers.Reshape((-1, outputs.shape[-1]), name=f"{name}_cells")(outputs)
    elif len(outputs.shape) == 2:
        outputs, pooled = None, outputs
    return outputs, pooled, mask


def _pool(sequence, mask, pooled, pooling: str, name: str):
    if pooling == "auto":
        if pooled is not None:
            return pooled
        pooling = "masked_mean" if mask is not None else "mean"
    if pooling == "cls":
        return sequence[:, 0, :]
    if pooling == "masked_mean" and mask is None:
        raise ConfigError(f"model.encoders.{name}.pooling=masked_mean needs a padding mask (text columns); use mean")
    return MaskedGlobalPooling(mode="mean", name=f"{name}_{pooling}_pool")(
        sequence, mask=mask if pooling == "masked_mean" else None)


def build_keras_hub(inputs, spec, *, name: str, preset: str, trainable: bool = False,
                    trainable_layers: Optional[int] = None, lora_rank: Optional[int] = None,
                    pooling: str = "auto", output: str = "both") -> EncoderOutput:
    """A KerasHub preset's backbone on the column input (see the module docstring).

    Args:
        inputs: the column's preprocessed input (token ids, converted images, log-mel frames).
        spec: its ``FeatureSpec`` (``padding_id`` for text).
        name: the column (prefix of the layer names).
        preset: the KerasHub handle or a local preset directory.
        trainable: fine-tune the whole backbone.
        trainable_layers: fine-tune only the last N blocks.
        lora_rank: fine-tune LoRA adapters of this rank only.
        pooling: ``auto``, ``cls``, ``mean`` or ``masked_mean``.
        output: ``both``, ``sequence`` or ``pooled``.
    """
    where = f"model.encoders.{name}"
    check_choice(name, "pooling", pooling, POOLINGS)
    check_choice(name, "output", output, OUTPUTS)
    backbone = load_backbone(preset, where, name=f"{name}_backbone")
    tuned = _set_trainable(backbone, where, trainable, trainable_layers, lora_rank)
    tower, kind = _tower(backbone, spec.modality, name)
    sequence, pooled, mask = _call(tower, kind, inputs, spec, tuned, name)
    if sequence is None:  # an embedding tower or a pooled-only backbone: one step
        return EncoderOutput(pooled, keras.layers.Reshape((1, pooled.shape[-1]), name=f"{name}_as_step")(pooled))
    vector = _pool(sequence, mask, pooled if output == "both" else None, pooling, name)
    if output == "pooled":
        return EncoderOutput(vector, keras.layers.Reshape((1, vector.shape[-1]), name=f"{name}_as_step")(vector))
    return EncoderOutput(vector, sequence, mask)


def _frozen(settings: dict) -> bool:
    """Nothing of the backbone learns (and it runs in inference mode): the trainer may cache it."""
    return not (settings.get("trainable") or settings.get("trainable_layers") or settings.get("lora_rank"))


build_keras_hub.frozen = _frozen


for _kind in ("text_encoder", "image_encoder", "audio_encoder"):
    registry.register(_kind, "keras_hub", loads_files=True)(build_keras_hub)
