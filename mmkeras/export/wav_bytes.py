"""Audio bytes as the exported graph takes them: WAV, converted on the client from other formats.

The serving graph decodes WAV only (TF Serving has no codec ops for FLAC, OGG or MP3), while
recordings often come in those formats and the training pipeline reads them with soundfile. So
what a client of the export sends (``mmkeras predict``, the warm-up records, ``predict_example``)
goes through ``audio_as_wav``: a WAV is sent as it is, any other format soundfile reads becomes a
16-bit PCM WAV with the same rate and channels, and anything else is sent unchanged for the
model to refuse with its own message.

Example:
    >>> import io, numpy as np, soundfile
    >>> flac = io.BytesIO()
    >>> soundfile.write(flac, np.zeros(800, np.int16), 8000, format="FLAC")
    >>> wav = audio_as_wav(flac.getvalue())
    >>> wav[:4], wav[8:12], soundfile.info(io.BytesIO(wav)).subtype, audio_as_wav(wav) == wav
    (b'RIFF', b'WAVE', 'PCM_16', True)
"""

from __future__ import annotations

import io


def is_wav(data: bytes) -> bool:
    """Whether ``data`` starts with a RIFF/WAVE header."""
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"


def audio_as_wav(data: bytes) -> bytes:
    """``data`` itself when it is a WAV (or not audio soundfile reads), else the same audio as a
    16-bit PCM WAV (rate and channels kept)."""
    if not data or is_wav(data):
        return data
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except soundfile.SoundFileError:
        return data
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
