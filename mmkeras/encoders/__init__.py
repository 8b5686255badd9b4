"""Per-modality encoders: factories ``build_xxx(inputs, spec, *, name, **settings) -> EncoderOutput``.

Importing this package registers every encoder (``registry.names("text_encoder")`` etc.).
"""

from mmkeras.encoders import image, keras_hub, speech, text
from mmkeras.encoders.base import DEFAULT_ENCODERS, ENCODER_KINDS, EncoderOutput, build_encoder, check_settings

__all__ = ["DEFAULT_ENCODERS", "ENCODER_KINDS", "EncoderOutput", "build_encoder", "check_settings", "image", "keras_hub", "speech", "text"]
