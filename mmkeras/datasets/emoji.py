"""``emoji``: Noto Color Emoji images with their Unicode name and keywords, labelled by emoji group.

1601 glyphs (72x72 RGBA PNG) in 8 classes (the Unicode emoji groups), split 70/15/15 per class with a
seeded shuffle.

Example:
    >>> emoji_text({"text": "grinning face", "keywords": "grinning; smile; happy"})
    'grinning face: grinning, smile, happy'
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mmkeras.datasets._files import SPLITS, Built, read_csv, source_dir, stratified_split

NAME = "emoji"
SUMMARY = "Noto Color Emoji images + Unicode names and keywords, labelled by emoji group (8 classes)"
FRACTIONS = (0.70, 0.15, 0.15)

COLUMNS = {
    "image": "Noto Color Emoji glyph, 72x72 RGBA PNG (original bytes)",
    "text": "Unicode CLDR short name, then the gemoji keywords when there are any",
    "label": "Unicode emoji group (8 classes)",
    "subgroup": "Unicode emoji subgroup (finer label, 96 values)",
    "emoji": "the emoji character",
    "codepoints": "hex code points",
}


def emoji_text(row: dict) -> str:
    """``name: keyword, keyword`` from a bundled manifest row (just the name when it has no keywords)."""
    keywords = [k.strip() for k in row["keywords"].split(";") if k.strip()]
    return f"{row['text']}: {', '.join(keywords)}" if keywords else row["text"]


def build(out: Path, *, seed: int) -> Built:
    """Copies the images into ``out/images`` and returns the rows of a seeded stratified 70/15/15 split."""
    source = source_dir("noto_emoji")
    items = read_csv(source / "manifest.csv")
    positions = stratified_split([item["label"] for item in items], FRACTIONS, seed)
    (out / "images").mkdir()
    rows = {split: [] for split in SPLITS}
    for split in SPLITS:
        for position in positions[split]:
            item = items[position]
            image_path = f"images/{Path(item['image']).name}"
            shutil.copyfile(source / item["image"], out / image_path)
            rows[split].append(
                {
                    "image": image_path,
                    "text": emoji_text(item),
                    "label": item["label"],
                    "subgroup": item["subgroup"],
                    "emoji": item["emoji"],
                    "codepoints": item["codepoints"],
                }
            )
    about = "\n".join(
        [
            "Google Noto Color Emoji glyphs (72x72 RGBA PNGs, copied byte for byte) paired with their",
            "Unicode CLDR English name plus GitHub gemoji keywords (`text`), labelled by Unicode emoji",
            "group (`label`, 8 classes). Skin-tone variants, components and flags are not included.",
            "",
            "Split: within each group the items are shuffled (seeded) and 15% go to validation, 15% to",
            "test and the rest to train, so every split has every group in the same proportion.",
            "",
            "Caveat: the name often gives the group away (\"... face\" is Smileys & Emotion), so text alone",
            "is a strong baseline; images have an alpha channel (transparent background).",
        ]
    )
    return Built(columns=dict(COLUMNS), rows=rows, about=about, sources=("noto_emoji",))
