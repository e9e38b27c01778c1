"""The engine's errors: each names the problem in words a user can act on."""

# What a user runs when the weights are missing or broken (named by the engine's and the CLI's messages).
FETCH_COMMAND = "neural-fill fetch-weights"


class FillError(ValueError):
    """Input the engine cannot fill (bad mask, bad image, bad options)."""


class OptionsError(FillError):
    """An option with a wrong type, a value out of range or an unknown name."""


class MaskError(FillError):
    """A mask that is empty, covers everything, or does not match the image."""


class ImageError(FillError):
    """An image of a shape or sample type the engine does not handle."""


class WeightsError(RuntimeError):
    """VGG-19 weights missing, truncated or wrong; the message says how to fetch them."""


class Cancelled(Exception):  # noqa: N818 - a cancelled fill is an outcome, not an error
    """Raised inside fill() when the cancel check answers True."""
