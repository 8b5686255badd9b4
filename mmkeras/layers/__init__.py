"""Keras layers of mmkeras: the fusion zoo and the helper layers the encoders use.

Every fusion is registered under ``registry.get("fusion", NAME)`` and obeys one contract, so a
config can swap one for another:

.. code-block:: text

    fusion = registry.get("fusion", NAME)(output_dim=..., **settings)   # plus num_classes=C for "late", "hybrid"
    out = fusion(vectors, presence, tokens=None, token_masks=None, training=None)

      vectors:     list of M tensors (batch, dim_m): the pooled vector of each modality;
                   M is 1, 2 or 3 and the dims may differ.
      presence:    (batch, M) float 0/1, 1 = the modality is present for that example.
      tokens:      optional list of M tensors (batch, steps_m, dim_m): token sequences
                   (read by fusions with ``uses_tokens = True``; the others ignore them).
      token_masks: optional list of M tensors (batch, steps_m), 1 = real token.
      returns:     (batch, output_dim) float32, also under mixed_float16 / mixed_bfloat16.

Class attributes the model factory reads:

- ``uses_tokens``: True for ``cross_attention``; such a fusion also works when ``tokens`` is
  None, treating each pooled vector as a one-step sequence.
- ``outputs_logits``: True for ``late`` and ``hybrid``, which return ``(batch, num_classes)``
  logits; the factory puts only a softmax after it.

Masking rule: a missing modality (presence 0) never changes the output through its values.
Its vector and tokens are *selected away* (``where``), never multiplied by 0 and never read as
data, so replacing them by anything leaves the output bit-for-bit identical. An example where
every modality is missing gives a finite output (no NaN, also in the gradient).

Fusions (registry name: class): ``concat``: ConcatFusion, ``mean``: MeanFusion,
``weighted_sum``: WeightedSumFusion, ``gated``: GatedFusion, ``self_attention``:
SelfAttentionFusion, ``cross_attention``: CrossAttentionFusion, ``tensor``: TensorFusion,
``low_rank``: LowRankFusion, ``late``: LateFusion, ``graph``: GraphFusion (graph attention over
the modalities as nodes), ``hybrid``: HybridFusion (an early-fusion classifier and per-modality
decisions mixed by learned weights). Helper layers (not fusions):
MaskedGlobalPooling, ModalityDropout, ModalityProjection (the per-modality projection every
fusion that needs a common width uses; it applies the masking rule), TransformerBlock (pre- or
post-norm, self- or cross-attention: CrossAttentionFusion's blocks and the ``transformer``
text encoder's; SelfAttentionFusion uses ``keras_hub.layers.TransformerEncoder``, which this
block equals without a context). Position embeddings are ``keras_hub.layers.PositionEmbedding``.

Example:
    >>> import keras
    >>> import numpy as np
    >>> from mmkeras import registry
    >>> fusion = registry.get("fusion", "gated")(output_dim=8)
    >>> vectors = [np.ones((2, 4), "float32"), np.ones((2, 3), "float32")]
    >>> presence = np.array([[1, 1], [1, 0]], "float32")
    >>> out = fusion(vectors, presence)
    >>> tuple(out.shape), keras.backend.standardize_dtype(out.dtype)
    ((2, 8), 'float32')
"""

from mmkeras.layers.concat_fusion import ConcatFusion
from mmkeras.layers.cross_attention_fusion import CrossAttentionFusion
from mmkeras.layers.fusion_base import Fusion
from mmkeras.layers.gated_fusion import GatedFusion
from mmkeras.layers.graph_fusion import GraphFusion
from mmkeras.layers.hybrid_fusion import HybridFusion
from mmkeras.layers.late_fusion import LateFusion
from mmkeras.layers.low_rank_fusion import LowRankFusion
from mmkeras.layers.masked_pooling import MaskedGlobalPooling
from mmkeras.layers.mean_fusion import MeanFusion
from mmkeras.layers.modality_dropout import ModalityDropout
from mmkeras.layers.modality_projection import ModalityProjection
from mmkeras.layers.self_attention_fusion import SelfAttentionFusion
from mmkeras.layers.tensor_fusion import TensorFusion
from mmkeras.layers.transformer_block import TransformerBlock
from mmkeras.layers.weighted_sum_fusion import WeightedSumFusion

__all__ = [
    "ConcatFusion",
    "CrossAttentionFusion",
    "Fusion",
    "GatedFusion",
    "GraphFusion",
    "HybridFusion",
    "LateFusion",
    "LowRankFusion",
    "MaskedGlobalPooling",
    "MeanFusion",
    "ModalityDropout",
    "ModalityProjection",
    "SelfAttentionFusion",
    "TensorFusion",
    "TransformerBlock",
    "WeightedSumFusion",
]
