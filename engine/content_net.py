"""The content network: predicts a hole's global structure at 128x128, the prior the texture optimisation follows.

Yang et al. train a Context Encoder for square centre holes. Ours takes any hole shape and makes the most of little
data:
- input: the RGB image with the hole given a harmonic fill (engine/content.py: the smoothest surface meeting the
  border, already better than OpenCV's Telea on our photos), plus the hole mask;
- encoder: the frozen ImageNet VGG-19 convolutions the texture term loads anyway (relu1_1 .. relu4_1), so only the
  rest is learned;
- bottleneck at 1/8 resolution: dilated convolutions and a global-context branch, so the centre of a 64x64 hole
  sees the whole frame;
- decoder: light, upsampling x2 three times with skip connections from the VGG taps, the mask and (at full size)
  the harmonic fill;
- output: a correction added to the harmonic fill (zero at initialisation, so an untrained network already predicts
  the harmonic fill and training only has to learn what diffusion cannot: structure and shading), composited with
  the known pixels (they are never changed).

Weights are the decoder's only (a few MB, safetensors: loading executes no code); VGG-19 comes from its own file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812 - the torch convention
from torch import nn

from .atomic import atomic_path
from .content import harmonic_fill
from .device import reduced_precision
from .resample import bilinear
from .vgg import VGGFeatures

SIZE = 128  # the network's working size
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
TAP_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}
WEIGHTS_NAME = "content_net.safetensors"
FORMAT = "neural-fill content decoder v2"  # v1 predicted whole images from a mean-colour fill
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "data" / WEIGHTS_NAME


def weights_path() -> Path:
    """A network the user trained (`content_net.safetensors` in the data dir, beside the VGG-19 weights) wins over
    the one shipped with the package."""
    from .weights import data_dir

    own = data_dir() / WEIGHTS_NAME
    return own if own.is_file() else SHIPPED_WEIGHTS


def conv(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation),
                         nn.GroupNorm(8, out_channels), nn.ReLU(inplace=True))


class Decoder(nn.Module):
    """Everything the content network learns: bottleneck and decoder (the encoder is the frozen VGG)."""

    def __init__(self, width: int = 192) -> None:
        super().__init__()
        self.squeeze = conv(TAP_CHANNELS["relu4_1"] + 1, width)
        self.context = nn.Sequential(*(conv(width, width, dilation) for dilation in (2, 4, 8, 2)))
        self.global_mix = nn.Linear(width, width)
        self.up3 = nn.Sequential(conv(width + TAP_CHANNELS["relu3_1"] + 1, 128), conv(128, 128))
        self.up2 = nn.Sequential(conv(128 + TAP_CHANNELS["relu2_1"] + 1, 64), conv(64, 64))
        self.up1 = nn.Sequential(conv(64 + TAP_CHANNELS["relu1_1"] + 3 + 1, 32), conv(32, 32))
        self.to_rgb = nn.Conv2d(32, 3, 3, padding=1)
        # Zero correction at the start: the untrained network is the harmonic fill, never worse.
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_rgb.bias)

    def forward(self, taps: dict[str, torch.Tensor], hole: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """The correction (B,3,S,S) to add to `start`, the harmonic fill."""
        def with_hole(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, F.interpolate(hole, size=x.shape[-2:], mode="area")], 1)

        x = self.squeeze(with_hole(taps["relu4_1"]))
        # The mean of the known cells, fed back everywhere: a hole's centre hears about the whole frame.
        known = 1 - F.interpolate(hole, size=x.shape[-2:], mode="area")
        pooled = (x * known).sum((-2, -1)) / known.sum((-2, -1)).clamp_min(1.0)
        x = self.context(x) + self.global_mix(pooled)[..., None, None]
        for block, tap in ((self.up3, "relu3_1"), (self.up2, "relu2_1"), (self.up1, "relu1_1")):
            x = bilinear(x, taps[tap].shape[-2:])
            extra = (start,) if tap == "relu1_1" else ()
            x = block(with_hole(torch.cat([x, taps[tap], *extra], 1)))
        return self.to_rgb(x)


class ContentNet(nn.Module):
    """image (B,3,S,S) in 0..1 and hole (B,1,S,S) in {0,1} -> the image with its hole predicted, known kept."""

    def __init__(self, vgg: VGGFeatures, decoder: Decoder | None = None) -> None:
        super().__init__()
        self.vgg = vgg
        self.decoder = decoder if decoder is not None else Decoder()

    def forward(self, image: torch.Tensor, hole: torch.Tensor, precision: torch.dtype = torch.float32) -> torch.Tensor:
        """precision: the dtype the encoder and decoder run in (engine/device.py); the harmonic start and the
        prediction stay float32."""
        known = 1 - hole
        with torch.no_grad():  # the encoder is frozen: no gradient, no graph
            start = harmonic_fill(image * known, known)
            with reduced_precision(image.device, precision):
                taps = self.vgg(start * 255, TAPS)
        with reduced_precision(image.device, precision):
            change = self.decoder(taps, hole, start)
        predicted = (start + change.float()).clamp(0, 1)
        return image * known + predicted * hole


# ------------------------------------------------------------------------------------------------ weights

def save_decoder(decoder: Decoder, path: Path, metadata: dict[str, str] | None = None) -> None:
    """The learned weights as float16 safetensors (half the size; the prediction is a prior, not the output),
    written through a temporary file so a crash never leaves half a file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: value.detach().to("cpu", torch.float16).contiguous()
               for name, value in decoder.state_dict().items()}
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": FORMAT, **(metadata or {})})


def load_decoder(path: Path | None = None) -> Decoder:
    from safetensors import SafetensorError, safe_open

    from .errors import WeightsError

    path = Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise WeightsError(f"no content network weights at {path}: train them with `neural-fill train`, or use "
                           "another content predictor (--content patches)")
    try:
        with safe_open(str(path), "pt") as handle:
            found = (handle.metadata() or {}).get("format")
            if found != FORMAT:
                raise WeightsError(f"the content network weights at {path} are {found or 'of no known format'}, "
                                   f"not {FORMAT}: train them again with this version's `neural-fill train`")
            state = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 - a handle, not a dict
        decoder = Decoder()
        decoder.load_state_dict({name: value.float() for name, value in state.items()})
    except (SafetensorError, RuntimeError, OSError) as error:
        raise WeightsError(f"the content network weights at {path} cannot be loaded: {error}") from None
    return decoder.eval().requires_grad_(False)


_CACHE: dict[tuple[str, str], ContentNet] = {}


def load_content_net(device: torch.device, path: Path | None = None) -> ContentNet:
    """The user's, the shipped or the given network on `device`, loaded once per process."""
    from .vgg import load_vgg

    path = Path(path) if path is not None else weights_path()
    key = (str(device), str(path))
    if key not in _CACHE:
        _CACHE[key] = ContentNet(load_vgg(device), load_decoder(path).to(device)).eval()
    return _CACHE[key]


# ------------------------------------------------------------------------------------------------ prediction

class NetworkPredictor:
    """The content network as the method's ContentPredictor: any crop is brought to 128x128 and back."""

    preferred_side = SIZE
    smooth_prior = True

    def __init__(self, network: ContentNet, precision: torch.dtype = torch.float32) -> None:
        self.network = network
        self.precision = precision

    @torch.no_grad()
    def predict(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        size = image.shape[-2:]
        small = F.interpolate(image, size=(SIZE, SIZE), mode="area")
        small_hole = (F.interpolate(hole, size=(SIZE, SIZE), mode="area") > 0).to(image.dtype)
        predicted = self.network(small, small_hole, self.precision)
        back = bilinear(predicted, size).clamp(0, 1)
        return image * (1 - hole) + back * hole


def predict_image(image, hole, device: torch.device | None = None, path: Path | None = None):
    """numpy uint8 HxWx3 and a bool HxW hole -> uint8 HxWx3: the network alone (the Context Encoder analogue)."""
    import numpy as np

    device = device or torch.device("cpu")
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().to(device) / 255
    mask = torch.from_numpy(np.asarray(hole, dtype=np.float32))[None, None].to(device)
    predicted = NetworkPredictor(load_content_net(device, path)).predict(tensor, mask)
    out = (predicted[0].permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    return np.where(np.asarray(hole)[..., None], out, image)
