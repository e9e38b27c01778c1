"""Neural Fill's engine: multi-scale neural patch synthesis (Yang et al., CVPR 2017) on tensors.

It knows nothing of sockets, GIMP or image files; the daemon and the CLI call `fill`.
"""

from .errors import Cancelled, FillError, ImageError, MaskError, OptionsError, WeightsError
from .fill import fill
from .options import PRESETS, FillOptions, get_preset
from .progress import Progress

__all__ = [
    "Cancelled", "FillError", "FillOptions", "ImageError", "MaskError", "OptionsError", "PRESETS", "Progress",
    "WeightsError", "fill", "get_preset",
]
