"""Image ops on PIL images and torch tensors with torchvision's numerics and RNG use.

Geometry (resize, pad, crop, flip), the random box samplers of RandomResizedCrop and
RandomCrop, and the PIL -> tensor conversion. Colour and blur ops live in color.py.
"""
import math
import numbers

import numpy as np
import torch
from PIL import Image, ImageOps

# INPUT.INTERPOLATION name -> PIL resampling filter (what torchvision passes to PIL)
INTERPOLATION_MODES = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}

# PIL modes whose pixels are 8-bit samples, so ToTensor can scale them into [0, 1]
_EIGHT_BIT_MODES = ("1", "L", "P", "LA", "PA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")


def interpolation(name):
    """PIL resampling filter for an INPUT.INTERPOLATION name."""
    if name not in INTERPOLATION_MODES:
        raise ValueError(
            f'Unknown INPUT.INTERPOLATION "{name}": supported are {", ".join(INTERPOLATION_MODES)}'
        )
    return INTERPOLATION_MODES[name]


def resample(mode):
    """A PIL resampling filter from a filter or an INPUT.INTERPOLATION name."""
    if isinstance(mode, str):
        return interpolation(mode)
    if mode not in INTERPOLATION_MODES.values():
        raise ValueError(f"Unsupported interpolation {mode!r}: use one of {', '.join(INTERPOLATION_MODES)}")
    return mode


def interpolation_name(mode):
    """Readable name of a PIL resampling filter (for __repr__)."""
    return next(name for name, code in INTERPOLATION_MODES.items() if code == mode)


def pair(size, what="size"):
    """int -> (size, size); a sequence of one or two ints -> (h, w)."""
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) in (1, 2) and all(isinstance(s, numbers.Integral) for s in size):
        return (int(size[0]), int(size[0])) if len(size) == 1 else (int(size[0]), int(size[1]))
    raise ValueError(f"{what} must be an int or a (height, width) pair of ints, got {size!r}")


def resized_output_size(width, height, size):
    """(w, h) after Resize(size): an int sets the shorter edge, the longer one is truncated."""
    if isinstance(size, numbers.Integral):
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)
    out_h, out_w = pair(size)
    return out_w, out_h


def resize(img, size, interp=Image.Resampling.BILINEAR):
    """int size: shorter edge becomes ``size``; (h, w): exact size. No-op when already right."""
    new_size = resized_output_size(img.width, img.height, size)
    if new_size == img.size:
        return img
    return img.resize(new_size, interp)


def pad(img, left, top, right, bottom, fill=0):
    """Constant padding on each side (PIL's expand, palette kept for mode P)."""
    out = ImageOps.expand(img, border=(left, top, right, bottom), fill=fill)
    if img.mode == "P":
        out.putpalette(img.getpalette())
    return out


def crop(img, top, left, height, width):
    return img.crop((left, top, left + width, top + height))


def center_crop(img, size):
    """Crop the centre with round-half-even offsets; zero-pad first when the crop is larger."""
    crop_h, crop_w = pair(size)
    w, h = img.size
    if crop_w > w or crop_h > h:
        dw, dh = max(crop_w - w, 0), max(crop_h - h, 0)
        img = pad(img, dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2)
        w, h = img.size
        if (crop_w, crop_h) == (w, h):
            return img
    top = round((h - crop_h) / 2.0)
    left = round((w - crop_w) / 2.0)
    return crop(img, top, left, crop_h, crop_w)


def hflip(img):
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def random_resized_crop_params(img, scale, ratio):
    """(top, left, h, w) drawn from the global torch RNG in torchvision's order.

    Per attempt: uniform(scale) for the area, uniform(log ratio) for the aspect ratio, and,
    if the box fits, randint for the top then randint for the left. After 10 misses the
    box is the central crop with the aspect ratio clamped into ``ratio``.
    """
    width, height = img.size
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))  # float32, as torchvision
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        w = round(math.sqrt(target_area * aspect_ratio))
        h = round(math.sqrt(target_area / aspect_ratio))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,)).item()
            j = torch.randint(0, width - w + 1, size=(1,)).item()
            return i, j, h, w
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = round(w / min(ratio))
    elif in_ratio > max(ratio):
        h = height
        w = round(h * max(ratio))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def random_crop_params(img, size):
    """(top, left, h, w) of RandomCrop: randint for the top, then for the left (torch RNG)."""
    w, h = img.size
    th, tw = size
    if h < th or w < tw:
        raise ValueError(
            f"RandomCrop size {(th, tw)} is larger than the (padded) image size {(h, w)}; "
            "use a larger INPUT.CROP_PADDING or smaller INPUT.SIZE"
        )
    if w == tw and h == th:
        return 0, 0, h, w
    i = torch.randint(0, h - th + 1, size=(1,)).item()
    j = torch.randint(0, w - tw + 1, size=(1,)).item()
    return i, j, th, tw


def to_tensor(img):
    """8-bit PIL image [H, W] or [H, W, C] -> float CHW tensor in [0, 1] (default float dtype)."""
    if img.mode not in _EIGHT_BIT_MODES:
        raise ValueError(
            f"ToTensor expects an 8-bit image, got mode {img.mode!r}; convert it first, e.g. img.convert('RGB')"
        )
    arr = np.array(img, dtype=np.uint8, copy=True)
    if img.mode == "1":
        arr *= 255  # bilevel pixels come out of numpy as 0/1
    x = torch.from_numpy(arr).view(img.height, img.width, len(img.getbands()))  # [H, W, C] uint8
    return x.permute(2, 0, 1).contiguous().to(torch.get_default_dtype()).div(255)  # [C, H, W]


def normalize(tensor, mean, std):
    """(x - mean) / std per channel; mean and std cast to the tensor's dtype first."""
    mean = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device)
    std = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device)
    if (std == 0).any():
        raise ValueError(f"Normalize std {std.tolist()} contains zero; fix INPUT.PIXEL_STD")
    return (tensor - mean.view(-1, 1, 1)) / std.view(-1, 1, 1)
