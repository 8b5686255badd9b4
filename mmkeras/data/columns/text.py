"""Text columns: standardize, split, look up ids, pad to ``sequence_length`` (pure TF ops).

Ids: 0 is padding, 1 is out of vocabulary, a vocabulary token ``i`` (0-based) is ``i + 2``. The
vocabulary is adapted on the train split (the ``max_tokens - 2`` most frequent tokens, ties broken
alphabetically) or, for ``tokenizer: wordpiece``, read from ``vocabulary_file`` and applied with
``tensorflow_text.WordpieceTokenizer``. The lookup is a ``tf.lookup.StaticHashTable`` held by a
``tf.Module``, so it runs in ``tf.data``, in a ``tf.function`` and in an exported SavedModel.

Example:
    >>> feature = TextFeature(sequence_length=5, max_tokens=10)
    >>> vocab = build_vocabulary(["A cat.", "a dog", "a cat!"], feature)
    >>> vocab
    ['a', 'cat', 'dog']
    >>> TextVectorizer(feature, vocab)(tf.constant("A cat and a bird")).numpy().tolist()
    [2, 3, 1, 2, 1]
    >>> column = TextColumn("caption", feature)
    >>> column.set_state({"vocabulary": vocab})
    >>> column.spec.shape, column.spec.vocab_size, column.decode(tf.constant("dog")).numpy().tolist()
    ((5,), 5, [4, 0, 0, 0, 0])
"""

from __future__ import annotations

import collections
import dataclasses
from typing import ClassVar, Iterable, Optional

import tensorflow as tf

from mmkeras.config_schema import at_least
from mmkeras.data.columns.base import Column, Feature
from mmkeras.data.columns.bytes import text_problems
from mmkeras.data.columns.noise import drop_tokens
from mmkeras.data.schema import FeatureSpec
from mmkeras.errors import ConfigError

PADDING_ID = 0
OOV_ID = 1
NUM_RESERVED_IDS = 2
# Same set as keras.layers.TextVectorization's "lower_and_strip_punctuation".
PUNCTUATION_PATTERN = r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']'
WORDPIECE_UNKNOWN = "[UNK]"


@dataclasses.dataclass
class TextFeature(Feature):
    """A text column: standardized, tokenized to ``sequence_length`` ids (0 = padding, 1 = OOV).

    ``sequence_length`` defaults to 32, or to the preset's when the column's encoder is a KerasHub
    preset (whose tokenizer then replaces ``max_tokens`` .. ``vocabulary_file``).
    """

    modality: str = "text"
    max_tokens: int = 5000
    sequence_length: Optional[int] = None
    standardize: str = "lower_and_strip_punctuation"
    split: str = "whitespace"
    tokenizer: str = "vectorize"
    vocabulary_file: Optional[str] = None
    DEFAULTS: ClassVar[dict] = {"sequence_length": 32}
    CHOICES: ClassVar[dict] = {
        "standardize": ("lower_and_strip_punctuation", "lower", "strip_punctuation", "none"),
        "split": ("whitespace", "character"),
        "tokenizer": ("vectorize", "wordpiece"),
    }

    def check(self, where: str) -> None:
        at_least(f"{where}.max_tokens", self.max_tokens, 3)  # padding, out-of-vocabulary, one token
        if self.sequence_length is not None:
            at_least(f"{where}.sequence_length", self.sequence_length, 1)
        if self.tokenizer == "wordpiece" and not self.vocabulary_file:
            raise ConfigError(f"{where}.tokenizer='wordpiece' needs {where}.vocabulary_file (a vocab.txt)")

    def spec(self, column: str) -> FeatureSpec:
        """Before adapting, ``vocab_size`` is at most ``max_tokens``."""
        return FeatureSpec(column, "text", (self.resolved().sequence_length,), "int32", vocab_size=self.max_tokens)


def standardize(text: tf.Tensor, mode: str) -> tf.Tensor:
    """Lower-case and/or strip ASCII punctuation from a string tensor of any shape."""
    if mode in ("lower_and_strip_punctuation", "lower"):
        text = tf.strings.lower(text, encoding="utf-8")
    if mode in ("lower_and_strip_punctuation", "strip_punctuation"):
        text = tf.strings.regex_replace(text, PUNCTUATION_PATTERN, "")
    return text


def split(text: tf.Tensor, mode: str):
    """Tokens of ``text``: a 1-D tensor for a scalar, a ``RaggedTensor`` for a vector."""
    if mode == "character":
        return tf.strings.unicode_split(text, "UTF-8")
    return tf.strings.split(text)


def build_vocabulary(texts: Iterable[str], feature) -> list:
    """The ``feature.max_tokens - 2`` most frequent tokens of ``texts`` (the train split)."""
    texts = [t for t in texts if t]
    if not texts:
        return []
    counts: collections.Counter = collections.Counter()
    batch = 4096
    for start in range(0, len(texts), batch):
        tokens = split(standardize(tf.constant(texts[start : start + batch]), feature.standardize),
                       feature.split)
        counts.update(token.decode("utf-8") for token in tokens.flat_values.numpy())
    counts.pop("", None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [token for token, _ in ranked[: max(feature.max_tokens - NUM_RESERVED_IDS, 0)]]


def read_wordpiece_vocabulary(path: str) -> list:
    """Lines of a WordPiece ``vocab.txt`` (``[UNK]`` is left out: it maps to the OOV id 1)."""
    if not path:
        raise ValueError("text tokenizer 'wordpiece' needs vocabulary_file (a vocab.txt, one token per line)")
    if not tf.io.gfile.exists(path):
        raise ValueError(f"vocabulary_file {path} does not exist")
    with tf.io.gfile.GFile(path, "r") as f:
        lines = [line.rstrip("\r\n") for line in f]
    return [token for token in lines if token and token != WORDPIECE_UNKNOWN]


class TextVectorizer(tf.Module):
    """Scalar string -> ``int32[sequence_length]`` ids with a fixed vocabulary.

    Args:
        feature: the column's ``TextFeature`` settings.
        vocabulary: tokens; token ``i`` gets id ``i + 2``.
    """

    def __init__(self, feature, vocabulary: list, name: Optional[str] = None):
        super().__init__(name=name)
        self.feature = feature
        self.vocabulary = list(vocabulary)
        keys = tf.constant(self.vocabulary or [""], dtype=tf.string)
        values = tf.range(tf.size(keys), dtype=tf.int64) if self.vocabulary else tf.constant([-1], tf.int64)
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1
        )
        self._wordpiece = None
        if feature.tokenizer == "wordpiece":
            import tensorflow_text  # imported here: only this tokenizer needs it

            self._wordpiece = tensorflow_text.WordpieceTokenizer(
                self.table, token_out_type=tf.string, unknown_token=WORDPIECE_UNKNOWN
            )

    @property
    def vocab_size(self) -> int:
        """Number of ids, padding and OOV included."""
        return len(self.vocabulary) + NUM_RESERVED_IDS

    def tokens(self, text: tf.Tensor) -> tf.Tensor:
        """1-D string tokens of a scalar string (wordpieces for the wordpiece tokenizer)."""
        tokens = split(standardize(text, self.feature.standardize), self.feature.split)
        if self._wordpiece is not None:
            tokens = self._wordpiece.tokenize(tokens).flat_values
        return tokens

    def __call__(self, text: tf.Tensor) -> tf.Tensor:
        index = self.table.lookup(self.tokens(text))
        ids = tf.where(index >= 0, index + NUM_RESERVED_IDS, OOV_ID)
        length = self.feature.sequence_length
        ids = tf.cast(ids[:length], tf.int32)
        ids = tf.pad(ids, [[0, length - tf.shape(ids)[0]]], constant_values=PADDING_ID)
        return tf.ensure_shape(ids, [length])


class TextColumn(Column):
    """A text column: token ids ``int32[sequence_length]`` from a vocabulary adapted on train."""

    modality = "text"
    feature_class = TextFeature

    def __init__(self, name: str, feature):
        super().__init__(name, feature)
        self.vectorizer: Optional[TextVectorizer] = None

    @property
    def spec(self) -> FeatureSpec:
        vocab_size = self.vectorizer.vocab_size if self.vectorizer is not None else None
        return FeatureSpec(self.name, self.modality, (self.feature.sequence_length,), "int32", vocab_size=vocab_size)

    def adapt(self, reader) -> None:
        if self.feature.tokenizer == "wordpiece":
            vocabulary = read_wordpiece_vocabulary(self.feature.vocabulary_file)
        else:
            vocabulary = build_vocabulary(reader.cells(self.name), self.feature)
        self.set_state({"vocabulary": vocabulary})

    def get_state(self) -> dict:
        return {"vocabulary": list(self.vectorizer.vocabulary)} if self.vectorizer is not None else {}

    def set_state(self, state: dict) -> None:
        self.vectorizer = TextVectorizer(self.feature, state.get("vocabulary", []), name=f"text_{self.name}")

    def resources(self) -> Optional[tf.Module]:
        return self.vectorizer

    def problems(self, contents: tf.Tensor, serving: bool = False) -> tf.Tensor:
        return text_problems(contents)

    def decode(self, value: tf.Tensor) -> tf.Tensor:
        return self.vectorizer(value)

    def add_noise(self, batch: dict, level: float, seed: tf.Tensor) -> tf.Tensor:
        return drop_tokens(batch[self.name], level, seed, PADDING_ID)

    def decode_cell(self, value: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
        # An empty string has no tokens: all padding, the same as empty(), without a tf.cond.
        return self.decode(value)
