"""Model assembly: heads (registered as kind ``head``) and ``build_model``."""

from mmkeras.models import heads
from mmkeras.models.factory import build_model, loss_weights

__all__ = ["build_model", "heads", "loss_weights"]
