"""Callable transform objects with torchvision's behaviour (same names, same RNG draws).

Each one is a plain picklable object, so DataLoader workers can receive it.
"""
import numbers

import torch
from PIL import Image

from . import color
from . import functional as F


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        lines = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({lines}\n)"


class Resize:
    """int (or [int]): the shorter edge becomes ``size`` (aspect kept); (h, w): exactly that size."""

    def __init__(self, size, interpolation=Image.Resampling.BILINEAR):
        if isinstance(size, (tuple, list)) and len(size) == 1:
            size = size[0]
        self.size = int(size) if isinstance(size, numbers.Integral) else F.pair(size)
        self.interpolation = F.resample(interpolation)

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation)

    def __repr__(self):
        return f"Resize(size={self.size}, interpolation={F.interpolation_name(self.interpolation)})"


class CenterCrop:
    """Central (h, w) crop; zero padding when the image is smaller."""

    def __init__(self, size):
        self.size = F.pair(size)

    def __call__(self, img):
        return F.center_crop(img, self.size)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class RandomResizedCrop:
    """Random box of ``scale`` x area and aspect ratio in ``ratio``, resized to ``size``."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation=Image.Resampling.BILINEAR):
        self.size = F.pair(size)
        self.scale = _check_range(scale, "scale (INPUT.RRCROP_SCALE)", low=0.0)
        self.ratio = _check_range(ratio, "ratio", low=0.0, strict_low=True)
        self.interpolation = F.resample(interpolation)

    def __call__(self, img):
        i, j, h, w = F.random_resized_crop_params(img, self.scale, self.ratio)
        return F.resize(F.crop(img, i, j, h, w), self.size, self.interpolation)

    def __repr__(self):
        ratio = tuple(round(r, 4) for r in self.ratio)
        return (
            f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={ratio}, "
            f"interpolation={F.interpolation_name(self.interpolation)})"
        )


class RandomCrop:
    """Zero-pad every side by ``padding``, then crop a random (h, w) box."""

    def __init__(self, size, padding=0):
        self.size = F.pair(size)
        if not isinstance(padding, numbers.Integral) or padding < 0:
            raise ValueError(f"RandomCrop padding must be a non-negative int, got {padding!r} (INPUT.CROP_PADDING)")
        self.padding = int(padding)

    def __call__(self, img):
        if self.padding > 0:
            img = F.pad(img, self.padding, self.padding, self.padding, self.padding)
        i, j, h, w = F.random_crop_params(img, self.size)
        return F.crop(img, i, j, h, w)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right when torch.rand(1) < p."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if torch.rand(1) < self.p:
            return F.hflip(img)
        return img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class ToTensor:
    """8-bit PIL image -> float tensor [C, H, W] in [0, 1]."""

    def __call__(self, img):
        return F.to_tensor(img)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel of a [C, H, W] tensor."""

    def __init__(self, mean, std):
        self.mean, self.std = list(mean), list(std)
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize mean {self.mean} and std {self.std} differ in length (INPUT.PIXEL_MEAN/STD)")
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize std {self.std} contains zero; fix INPUT.PIXEL_STD")

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class ColorJitter:
    """Brightness, contrast, saturation and hue changes in a random order.

    Draws, as torchvision: torch.randperm(4) for the order, then one uniform factor for
    each enabled adjustment in the order brightness, contrast, saturation, hue.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _jitter_range(brightness, "brightness")
        self.contrast = _jitter_range(contrast, "contrast")
        self.saturation = _jitter_range(saturation, "saturation")
        self.hue = _jitter_range(hue, "hue", center=0.0, bound=(-0.5, 0.5), clip_at_zero=False)

    def get_params(self):
        order = torch.randperm(4)
        factors = [
            None if r is None else float(torch.empty(1).uniform_(r[0], r[1]))
            for r in (self.brightness, self.contrast, self.saturation, self.hue)
        ]
        return order, factors

    def __call__(self, img):
        order, factors = self.get_params()
        ops = (color.adjust_brightness, color.adjust_contrast, color.adjust_saturation, color.adjust_hue)
        for k in order.tolist():
            if factors[k] is not None:
                img = ops[k](img, factors[k])
        return img

    def __repr__(self):
        return (
            f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, hue={self.hue})"
        )


class RandomGrayscale:
    """Grayscale (same channel count) when torch.rand(1) < p."""

    def __init__(self, p=0.1):
        self.p = p

    def __call__(self, img):
        if torch.rand(1) < self.p:
            return color.to_grayscale(img, len(img.getbands()))
        return img

    def __repr__(self):
        return f"RandomGrayscale(p={self.p})"


class GaussianBlur:
    """Gaussian blur with sigma drawn uniformly from ``sigma`` (torch RNG) per call."""

    def __init__(self, kernel_size, sigma=(0.1, 2.0)):
        kx, ky = _kernel_pair(kernel_size)
        self.kernel_size = (kx, ky)
        if isinstance(sigma, numbers.Number):
            sigma = (sigma, sigma)
        if len(sigma) != 2 or not 0.0 < sigma[0] <= sigma[1]:
            raise ValueError(f"GaussianBlur sigma must be positive, as a number or (min, max), got {sigma!r}")
        self.sigma = tuple(float(s) for s in sigma)

    def __call__(self, img):
        s = torch.empty(1).uniform_(self.sigma[0], self.sigma[1]).item()
        return color.gaussian_blur(img, self.kernel_size, (s, s))

    def __repr__(self):
        return f"GaussianBlur(kernel_size={self.kernel_size}, sigma={self.sigma})"


class RandomApply:
    """Apply all ``transforms`` unless p < torch.rand(1)."""

    def __init__(self, transforms, p=0.5):
        self.transforms = list(transforms)
        self.p = p

    def __call__(self, img):
        if self.p < torch.rand(1):
            return img
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return f"RandomApply(p={self.p}, transforms={self.transforms})"


def _check_range(value, name, low, strict_low=False):
    """A (min, max) pair of numbers with low <= min <= max (low < min when strict)."""
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(f"RandomResizedCrop {name} must be a (min, max) pair, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if lo > hi or lo < low or (strict_low and lo == low):
        raise ValueError(f"RandomResizedCrop {name} must satisfy {low} {'<' if strict_low else '<='} min <= max, got {value!r}")
    return lo, hi


def _jitter_range(value, name, center=1.0, bound=(0.0, float("inf")), clip_at_zero=True):
    """torchvision's ColorJitter range: v -> [center - v, center + v]; None when it is a no-op."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"ColorJitter {name} must be non-negative, got {value}")
        lo, hi = center - float(value), center + float(value)
        if clip_at_zero:
            lo = max(lo, 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        lo, hi = float(value[0]), float(value[1])
    else:
        raise ValueError(f"ColorJitter {name} must be a number or a (min, max) pair, got {value!r}")
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f"ColorJitter {name} range must lie in {bound}, got {(lo, hi)}")
    if lo == hi == center:
        return None
    return lo, hi


def _kernel_pair(kernel_size):
    ks = (kernel_size, kernel_size) if isinstance(kernel_size, numbers.Integral) else tuple(kernel_size)
    if len(ks) != 2 or any(not isinstance(k, numbers.Integral) or k <= 0 or k % 2 == 0 for k in ks):
        raise ValueError(f"GaussianBlur kernel size must be odd and positive (INPUT.GB_K), got {kernel_size!r}")
    return int(ks[0]), int(ks[1])
