"""Tiny random-weight KerasHub presets, written with ``save_to_preset`` so tests use the real loading path.

Each preset is a directory a config can name (``model.encoders.<col>: {type: keras_hub, preset: DIR}``):
a 1-layer BERT with a 40-token WordPiece vocabulary and its classifier preprocessor, a 2-block ViT
with its image converter (32 x 32 RGB, scaled to [-1, 1]), and a 1-layer Whisper (16 mel bins, 16 kHz)
with its audio converter. Building them takes a few seconds, so ``make_presets`` is called once per
test session (``tiny_presets`` fixture in tests/conftest.py).

Example (in a test):
    def test_x(tiny_presets):
        bert_dir = tiny_presets["bert"]
"""

from __future__ import annotations

from pathlib import Path

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "a", "the",
         "is", "of", "and", "##s", "digit", "number", "smile", "face", "cat", "dog", "red", "green", "blue"]
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


def make_presets(folder: Path) -> dict:
    """Write the three presets under ``folder``; returns ``{"bert": dir, "vit": dir, "whisper": dir}``."""
    import keras_hub

    folder = Path(folder)
    paths = {name: str(folder / name) for name in ("bert", "vit", "whisper")}
    if all((Path(path) / "config.json").exists() for path in paths.values()):
        return paths
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8).save_to_preset(paths["bert"])
    keras_hub.models.BertBackbone(vocabulary_size=len(VOCABULARY), num_layers=1, num_heads=2, hidden_dim=16,
                                  intermediate_dim=32, max_sequence_length=16).save_to_preset(paths["bert"])
    converter = keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 127.5, offset=-1)
    keras_hub.models.ViTImageClassifierPreprocessor(image_converter=converter).save_to_preset(paths["vit"])
    keras_hub.models.ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=16,
                                 mlp_dim=32).save_to_preset(paths["vit"])
    keras_hub.layers.WhisperAudioConverter(num_mels=16, sampling_rate=16000, max_audio_length=1).save_to_preset(
        paths["whisper"])
    keras_hub.models.WhisperBackbone(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                                     num_mels=16, max_encoder_sequence_length=100,
                                     max_decoder_sequence_length=8).save_to_preset(paths["whisper"])
    return paths
