"""Deprecated location of the image helpers: see ``mmkeras.data.columns.image_ops``."""

from mmkeras.data.columns.image_ops import *  # noqa: F401,F403
from mmkeras.data.columns.image_ops import check_augment  # noqa: F401
