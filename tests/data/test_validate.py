from mmkeras.data.validate import BadRow, format_bad_rows, validate
from tests.data.conftest import make_config, wav_bytes, write


def test_validate_lists_each_bad_row_with_its_reason(digits_dir):
    write(digits_dir / "images" / "text.png", b"hello, not an image")
    write(digits_dir / "images" / "empty.png", b"")
    write(digits_dir / "audio" / "fake.wav", b"RIFF\x00\x00\x00\x00WAVEjunk")
    write(digits_dir / "audio" / "big.wav", wav_bytes([0.0] * 12000, 8000))
    (digits_dir / "train.csv").write_text(
        "text,image,audio,label\n"
        "ok,images/0.png,audio/0.wav,cat\n"
        "a,images/nope.png,audio/fake.wav,dog\n"
        "b,images/text.png,,cat\n"
        "c,images/empty.png,audio/big.wav,dog\n")
    features = {"image": {"modality": "image"}, "audio": {"modality": "audio", "max_bytes": 20000}}
    bad = validate(make_config(digits_dir, features=features))
    assert bad == [
        BadRow("train", 2, "image", "images/nope.png", "does not exist"),
        BadRow("train", 2, "audio", "audio/fake.wav", "is truncated (a chunk header is cut off)"),
        BadRow("train", 3, "image", "images/text.png", "is not a PNG/JPEG/GIF/BMP/WebP image"),
        BadRow("train", 4, "image", "images/empty.png", "is an empty file"),
        BadRow("train", 4, "audio", "audio/big.wav", "is 24044 bytes, above the limit max_bytes=20000"),
    ]
    table = format_bad_rows(bad)
    assert table.splitlines()[0].split() == ["split", "row", "column", "path", "problem"]
    assert "train  2    image   images/nope.png   does not exist" in table and table.endswith("5 bad rows")


def test_validate_passes_good_data(digits_dir):
    assert validate(make_config(digits_dir)) == []
    assert format_bad_rows([]) == "no bad rows"
