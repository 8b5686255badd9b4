"""Deprecated location of the audio helpers: see ``mmkeras.data.columns.audio_ops``."""

from mmkeras.data.columns.audio_ops import *  # noqa: F401,F403
from mmkeras.data.columns.audio_ops import check_feature  # noqa: F401
