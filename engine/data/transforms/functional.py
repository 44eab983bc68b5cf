"""torchvision's image ops re-implemented on PIL + torch, with the same numerics and RNG use."""
import math
import numbers

import numpy as np
import torch
from PIL import Image

INTERPOLATION_MODES = {
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "nearest": Image.NEAREST,
}


def interpolation(name):
    if name not in INTERPOLATION_MODES:
        raise ValueError(
            f'Unknown INPUT.INTERPOLATION "{name}": supported are {", ".join(INTERPOLATION_MODES)}'
        )
    return INTERPOLATION_MODES[name]


def resize(img, size, interp=Image.BILINEAR):
    """int size: the shorter edge becomes ``size`` (long edge truncated); (h, w): exact size."""
    w, h = img.size
    if isinstance(size, numbers.Number):
        short, long = (w, h) if w <= h else (h, w)
        if short == size:
            return img
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        return img.resize((new_w, new_h), interp)
    out_h, out_w = size
    return img.resize((out_w, out_h), interp)


def pad(img, left, top, right, bottom, fill=0):
    w, h = img.size
    out = Image.new(img.mode, (w + left + right, h + top + bottom), fill)
    out.paste(img, (left, top))
    return out


def center_crop(img, size):
    """Crop the centre (round-half-even offsets); zero-pad first when the crop is larger."""
    crop_h, crop_w = size
    w, h = img.size
    if crop_w > w or crop_h > h:
        dw, dh = max(crop_w - w, 0), max(crop_h - h, 0)
        img = pad(img, dw // 2, dh // 2, (dw + 1) // 2, (dh + 1) // 2)
        w, h = img.size
        if crop_w == w and crop_h == h:
            return img
    top = int(round((h - crop_h) / 2.0))
    left = int(round((w - crop_w) / 2.0))
    return img.crop((left, top, left + crop_w, top + crop_h))


def crop(img, top, left, height, width):
    return img.crop((left, top, left + width, top + height))


def random_resized_crop_params(img, scale, ratio):
    """(top, left, h, w) drawn from the global torch RNG exactly as torchvision does."""
    width, height = img.size
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect_ratio = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        w = int(round(math.sqrt(target_area * aspect_ratio)))
        h = int(round(math.sqrt(target_area / aspect_ratio)))
        if 0 < w <= width and 0 < h <= height:
            i = torch.randint(0, height - h + 1, size=(1,)).item()
            j = torch.randint(0, width - w + 1, size=(1,)).item()
            return i, j, h, w
    # fallback: central crop with the ratio clamped into range
    in_ratio = float(width) / float(height)
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def to_tensor(img):
    """uint8 HWC PIL image -> float32 CHW in [0, 1]."""
    arr = np.array(img, dtype=np.uint8, copy=True)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous().float().div(255)


def normalize(tensor, mean, std):
    mean = torch.as_tensor(mean, dtype=tensor.dtype).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=tensor.dtype).view(-1, 1, 1)
    return (tensor - mean) / std
