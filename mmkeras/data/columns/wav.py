"""WAV files in pure TensorFlow: one header walk that gives both the verdict and the decoding plan.

``tf.audio.decode_wav`` reads 16-bit PCM only; real recordings also come as 24- and 32-bit PCM,
32-bit float, 8-bit PCM and in the WAVE_FORMAT_EXTENSIBLE wrapper. ``parse_wav`` walks the RIFF
chunks (at most ``MAX_CHUNKS``; a file padded with millions of empty chunks is refused, not walked)
and returns the format and where the samples are; ``decode_wav`` reads only the frames it is asked
for (the centre of the file), so a long or hostile file costs what the configured duration needs.
The same ops run in ``tf.data`` and inside the exported serving graph.

Example:
    >>> import io, wave, numpy as np
    >>> buffer = io.BytesIO()
    >>> with wave.open(buffer, "wb") as w:
    ...     w.setnchannels(2); w.setsampwidth(2); w.setframerate(8000)
    ...     w.writeframes(np.full((100, 2), 16384, "<i2").tobytes())
    >>> info = parse_wav(tf.constant(buffer.getvalue()))
    >>> info.problem.numpy(), int(info.rate), int(info.frames), int(info.channels)
    (b'', 8000, 100, 2)
    >>> samples = decode_wav(tf.constant(buffer.getvalue()), max_frames=10)
    >>> samples.shape, float(samples[0])
    (TensorShape([10]), 0.5)
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from mmkeras.data.columns.bytes import four_cc, size_of, uint

NOT_A_WAV = "is not a WAV file (no RIFF/WAVE header)"
#: Chunks walked before giving up; real WAVs have a handful (fmt, data, LIST, fact, cue, ...).
MAX_CHUNKS = 64
#: Sample rates accepted; outside this range a file is refused before anything is resampled.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
# Sample layouts decode_wav reads: (format tag, bits per sample); the index is the switch branch.
_LAYOUTS = ((_PCM, 8), (_PCM, 16), (_PCM, 24), (_PCM, 32), (_FLOAT, 32))


class WavInfo(NamedTuple):
    """What ``parse_wav`` found: ``problem`` ("" = decodable) and the layout of the samples."""

    problem: tf.Tensor
    layout: tf.Tensor  # index into _LAYOUTS
    channels: tf.Tensor
    rate: tf.Tensor
    data_start: tf.Tensor
    frames: tf.Tensor


def parse_wav(contents: tf.Tensor) -> WavInfo:
    """Walk the RIFF chunks of a scalar string: the verdict, format, rate and data position."""
    size = size_of(contents)
    zero = tf.constant(0, tf.int64)

    def cond(pos, count, fmt, channels, rate, bits, data_start, frames, problem):
        return tf.equal(problem, "") & tf.equal(frames, -1) & (pos < size)

    def body(pos, count, fmt, channels, rate, bits, data_start, frames, problem):
        chunk, length, start = four_cc(contents, pos), uint(contents, pos + 4, 4, True), pos + 8
        is_fmt, is_data = tf.equal(chunk, "fmt "), tf.equal(chunk, "data")
        tag = uint(contents, start, 2, True)
        tag = tf.where(tf.equal(tag, _EXTENSIBLE) & (length >= 26), uint(contents, start + 24, 2, True), tag)
        fmt = tf.where(is_fmt, tag, fmt)
        channels = tf.where(is_fmt, uint(contents, start + 2, 2, True), channels)
        rate = tf.where(is_fmt, uint(contents, start + 4, 4, True), rate)
        bits = tf.where(is_fmt, uint(contents, start + 14, 2, True), bits)
        block = channels * bits // 8
        problem = tf.where(start > size, "is truncated (a chunk header is cut off)",
                  tf.where(count >= MAX_CHUNKS, f"has more than {MAX_CHUNKS} chunks before its samples",
                  tf.where(is_fmt & ((length < 16) | (start + length > size)), "is truncated (it ends inside the WAV header)",
                  tf.where(is_data & (fmt < 0), "has its data chunk before the fmt chunk", ""))))
        data_frames = tf.where(is_data & (block > 0), length // tf.maximum(block, 1), frames)
        truncated = is_data & (start + data_frames * block > size)
        problem = tf.where(tf.equal(problem, "") & truncated, tf.strings.format(
            "is truncated (its data chunk needs {} bytes, {} are there)", (length, size - start)), problem)
        # RIFF chunks are padded to an even length.
        return (start + length + length % 2, count + 1, fmt, channels, rate, bits,
                tf.where(is_data, start, data_start), data_frames, problem)

    riff = tf.equal(four_cc(contents, 0), "RIFF") & tf.equal(four_cc(contents, 8), "WAVE")
    minus = tf.constant(-1, tf.int64)
    state = (tf.constant(12, tf.int64), zero, minus, zero, zero, zero, zero, minus, tf.constant(""))
    _, _, fmt, channels, rate, bits, data_start, frames, problem = tf.while_loop(cond, body, state)
    layouts = tf.constant(_LAYOUTS, tf.int64)
    matches = tf.equal(layouts[:, 0], fmt) & tf.equal(layouts[:, 1], bits)
    layout = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
    problem = tf.where(tf.equal(problem, "") & (fmt < 0), "has no fmt chunk", problem)
    unsupported = tf.strings.format("is a WAV of format {} with {}-bit samples; 8/16/24/32-bit PCM and "
                                    "32-bit float WAVs can be read", (fmt, bits))
    problem = tf.where(tf.equal(problem, "") & ~tf.reduce_any(matches), unsupported, problem)
    problem = tf.where(tf.equal(problem, "") & tf.equal(channels, 0), "has zero channels", problem)
    problem = tf.where(tf.equal(problem, "") & (frames < 0), "has no data chunk", problem)
    problem = tf.where(tf.equal(problem, "") & tf.equal(frames, 0), "has no samples", problem)
    bad_rate = tf.strings.format("has a sample rate of {} Hz, outside the accepted {}-{} Hz",
                                 (rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE))
    problem = tf.where(tf.equal(problem, "") & ((rate < MIN_SAMPLE_RATE) | (rate > MAX_SAMPLE_RATE)),
                       bad_rate, problem)
    problem = tf.where(riff, problem, NOT_A_WAV)
    return WavInfo(problem, layout, channels, rate, data_start, frames)


def _samples(raw: tf.Tensor, layout: int) -> tf.Tensor:
    """Little-endian sample bytes -> float32 in [-1, 1] for one of ``_LAYOUTS``."""
    if layout == 0:
        return (tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.float32) - 128.0) / 128.0
    if layout == 1:
        return tf.cast(tf.io.decode_raw(raw, tf.int16), tf.float32) / 32768.0
    if layout == 2:
        triples = tf.reshape(tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int32), [-1, 3])
        value = triples[:, 0] + triples[:, 1] * 256 + triples[:, 2] * 65536
        return tf.cast(value - tf.where(value >= 2**23, 2**24, 0), tf.float32) / 8388608.0
    if layout == 3:
        return tf.cast(tf.io.decode_raw(raw, tf.int32), tf.float32) / 2147483648.0
    return tf.io.decode_raw(raw, tf.float32)


def decode_wav(contents: tf.Tensor, max_frames=None, info: WavInfo | None = None) -> tf.Tensor:
    """Mono ``float32[n]`` of a WAV that ``parse_wav`` accepts: the centre ``max_frames`` frames (all
    when None), channels averaged. Call ``rate_of`` / ``parse_wav`` for the sample rate."""
    info = info if info is not None else parse_wav(contents)
    frames = info.frames if max_frames is None else tf.minimum(info.frames, tf.cast(max_frames, tf.int64))
    first = (info.frames - frames) // 2
    widths = tf.constant([1, 2, 3, 4, 4], tf.int64)
    block = info.channels * tf.gather(widths, info.layout)
    raw = tf.strings.substr(contents, tf.cast(info.data_start + first * block, tf.int32),
                            tf.cast(frames * block, tf.int32))
    samples = tf.switch_case(info.layout, [lambda i=i: _samples(raw, i) for i in range(len(_LAYOUTS))])
    samples = tf.reshape(samples, tf.stack([-1, tf.cast(info.channels, tf.int32)]))
    return tf.reduce_mean(samples, axis=-1)
