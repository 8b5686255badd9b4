"""What the pipeline hands the model: one ``FeatureSpec`` per feature column.

The tf.data element is ``(features, label)`` where ``features`` has, for every column ``c``:
``features[c]`` (fixed shape ``spec.shape`` per example, dtype ``spec.dtype``) and
``features[f"{c}_present"]`` (float32 scalar per example, 1.0 when the cell was not empty).

Example:
    >>> spec = FeatureSpec(column="text", modality="text", shape=(16,), dtype="int32", vocab_size=100)
    >>> spec.presence_key
    'text_present'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

PRESENCE_SUFFIX = "_present"
#: Keys ``encoded__<column>__<i>`` carry a frozen backbone's cached outputs in place of the column
#: (``mmkeras.training.frozen_cache``); the preprocessing stages pass them through untouched.
ENCODED_PREFIX = "encoded__"


@dataclass(frozen=True)
class FeatureSpec:
    """Shape and meaning of one preprocessed feature column.

    Args:
        column: the manifest column, also the model input name.
        modality: ``"text"``, ``"image"`` or ``"audio"``.
        shape: per-example shape, e.g. ``(16,)`` token ids, ``(28, 28, 1)`` pixels in [0, 1],
            ``(frames, bins)`` audio features or ``(samples, 1)`` for the waveform front end.
        dtype: ``"int32"`` for token ids, ``"float32"`` otherwise.
        vocab_size: text only: number of ids.
        padding_id: text only: the id of padding (0 for mmkeras's own vocabularies; a KerasHub
            tokenizer's ``pad_token_id``): the encoders' padding mask is ``ids != padding_id``.
    """

    column: str
    modality: str
    shape: tuple
    dtype: str
    vocab_size: Optional[int] = None
    padding_id: int = 0

    @property
    def presence_key(self) -> str:
        return f"{self.column}{PRESENCE_SUFFIX}"


#: Deprecated name of ``FeatureSpec`` (it collided with ``keras.InputSpec``).
InputSpec = FeatureSpec
