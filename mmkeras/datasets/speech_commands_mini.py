"""``speech_commands_mini``: 300 one-second clips of 30 spoken command words (Speech Commands v0.01).

Uses the dataset's official split (its ``testing_list.txt`` / ``validation_list.txt``), so ``seed``
changes nothing here. The transcript is in ``transcript``, not ``text``: it always equals the label.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mmkeras.datasets._files import SPLITS, Built, read_csv, source_dir

NAME = "speech_commands_mini"
SUMMARY = "one-second spoken command words (Speech Commands v0.01 sample), 30 classes"

COLUMNS = {
    "audio": "clip, 16 kHz mono 16-bit PCM WAV, at most 1 s (original bytes)",
    "label": "the spoken word (30 classes)",
    "transcript": "the spoken word again (equal to label; not a model input)",
    "speaker": "anonymous speaker id",
    "utterance": "index of this speaker's utterance of this word",
    "is_core_command": "yes for the 10 command words yes/no/up/down/left/right/on/off/stop/go",
}


def build(out: Path, *, seed: int) -> Built:
    """Copies the clips into ``out/audio/<word>/`` and returns the rows of the official splits."""
    del seed  # the official split is fixed
    source = source_dir("speech_commands_mini")
    rows = {split: [] for split in SPLITS}
    for item in read_csv(source / "manifest.csv"):
        if item["split"] not in rows:
            raise ValueError(f"{source / 'manifest.csv'}: unknown split {item['split']!r} for {item['audio']}")
        audio_path = f"audio/{item['label']}/{Path(item['audio']).name}"
        (out / audio_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / item["audio"], out / audio_path)
        rows[item["split"]].append(
            {
                "audio": audio_path,
                "label": item["label"],
                "transcript": item["text"],
                "speaker": item["speaker"],
                "utterance": item["utterance"],
                "is_core_command": item["is_core_command"],
            }
        )
    about = "\n".join(
        [
            "A 300-clip sample (10 clips for each of the 30 words) of Google's Speech Commands v0.01:",
            "crowdsourced one-second recordings of single English words, 16 kHz 16-bit PCM, copied byte for",
            "byte.",
            "",
            "Split: the dataset's official partition (from its `testing_list.txt` and",
            "`validation_list.txt`, which assign clips by a hash of the speaker id, so a speaker never",
            "appears in two splits); the seed has no effect.",
            "",
            "`transcript` equals `label` (single-word clips), so it is not named `text`: this is an audio",
            "classification set, not a text one.",
        ]
    )
    return Built(columns=dict(COLUMNS), rows=rows, about=about, sources=("speech_commands_mini",))
