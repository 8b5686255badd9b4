import tensorflow as tf

from mmkeras.config import TextFeature
from mmkeras.data.columns import text


def test_vocabulary_is_top_tokens_by_frequency_with_padding_and_oov_ids():
    feature = TextFeature(max_tokens=4, sequence_length=6)
    vocab = text.build_vocabulary(["b b a", "c b a", "d!"], feature)
    assert vocab == ["b", "a"]  # max_tokens - 2
    ids = text.TextVectorizer(feature, vocab)(tf.constant("A, B c"))
    assert ids.numpy().tolist() == [3, 2, 1, 0, 0, 0]


def test_truncates_to_sequence_length_and_splits_characters():
    feature = TextFeature(sequence_length=3, split="character", standardize="none")
    vectorizer = text.TextVectorizer(feature, ["a", "b"])
    assert vectorizer(tf.constant("abab")).numpy().tolist() == [2, 3, 2]
    assert vectorizer.vocab_size == 4


def test_standardize_modes():
    value = tf.constant("Hello, World!")
    assert text.standardize(value, "lower").numpy() == b"hello, world!"
    assert text.standardize(value, "strip_punctuation").numpy() == b"Hello World"
    assert text.standardize(value, "none").numpy() == b"Hello, World!"


def test_wordpiece_tokenizer_uses_the_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[UNK]\nplay\n##ing\n##ed\nthe\n")
    feature = TextFeature(tokenizer="wordpiece", vocabulary_file=str(path), sequence_length=6)
    vocab = text.read_wordpiece_vocabulary(str(path))
    assert vocab == ["[PAD]", "play", "##ing", "##ed", "the"]
    ids = text.TextVectorizer(feature, vocab)(tf.constant("The playing zzz played"))
    # the=6, play=3 ##ing=4, zzz -> [UNK] -> 1, play=3 ##ed=5
    assert ids.numpy().tolist() == [6, 3, 4, 1, 3, 5]
