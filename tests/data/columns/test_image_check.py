"""The image verdict reads headers only: sizes and frame counts are refused before decoding."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mmkeras.config import ImageFeature
from mmkeras.data.columns.image import ImageColumn
from mmkeras.data.columns.image_check import CORRUPT, NOT_AN_IMAGE, image_problem


def _pil(array, fmt, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _verdict(contents: bytes, max_pixels=10**6, max_bytes=10**7) -> str:
    return image_problem(tf.constant(contents), max_bytes, max_pixels).numpy().decode()


RGB = np.zeros((6, 10, 3), np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_every_format_reports_its_true_size_against_the_pixel_limit(fmt):
    contents = _pil(RGB, fmt)
    assert _verdict(contents) == ""
    assert _verdict(contents, max_pixels=59) == "is 10 x 6 pixels (1 frame), above the limit max_pixels=59"
    decoded = ImageColumn("image", ImageFeature(height=4, width=4, channels=3)).decode(tf.constant(contents))
    assert decoded.shape == (4, 4, 3)


def test_a_png_claiming_a_huge_size_is_refused_before_decoding():
    png = bytearray(tf.io.encode_png(tf.zeros([5, 7, 3], tf.uint8)).numpy())
    png[16:24] = (20000).to_bytes(4, "big") + (30000).to_bytes(4, "big")
    assert _verdict(bytes(png), max_pixels=16_000_000) == (
        "is 20000 x 30000 pixels (1 frame), above the limit max_pixels=16000000")
    column = ImageColumn("image", ImageFeature())
    with pytest.raises(tf.errors.InvalidArgumentError, match="refused by its header check"):
        column.decode(tf.constant(bytes(png)))


def test_gif_frames_count_against_the_pixel_limit():
    frames = [Image.fromarray(np.full((10, 10, 3), 20 * i, np.uint8)) for i in range(8)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    verdict = _verdict(buffer.getvalue(), max_pixels=500)
    assert verdict.startswith("is 10 x 10 pixels (") and verdict.endswith("frames), above the limit max_pixels=500")
    frame_count = int(verdict.split("(")[1].split()[0])
    assert frame_count == 8


def test_truncated_files_and_unknown_formats_get_one_sentence_each():
    png, jpeg = _pil(RGB, "PNG"), _pil(RGB, "JPEG")
    cut_jpeg_keeping_end_marker = jpeg[: len(jpeg) // 2] + b"\xff\xd9"
    assert [_verdict(b) for b in (png[:-5], png[:20], b"hello", b"")] == [CORRUPT, CORRUPT, NOT_AN_IMAGE, ""]
    assert _verdict(cut_jpeg_keeping_end_marker) == ""  # the header is fine; the decoder must say the rest
    column = ImageColumn("image", ImageFeature(channels=3))
    decoded, ok = column.serving_decode(tf.constant(cut_jpeg_keeping_end_marker))
    assert not bool(ok) and column.corrupt == CORRUPT
    assert _verdict(png, max_bytes=10).startswith(f"is {len(png)} bytes, above the limit max_bytes=10")


def test_an_animated_webp_is_refused():
    frames = [Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)) for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:])
    assert _verdict(buffer.getvalue()) == "is an animated WebP; give a still image (PNG/JPEG/GIF/BMP/WebP)"
