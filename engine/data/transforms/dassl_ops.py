"""Dassl's own augmentations (not in torchvision), with Dassl's RNG sources.

Random2DTranslation and GaussianNoise draw their coin from Python's ``random``;
Cutout draws hole centres from NumPy's global RNG; GaussianNoise's noise comes from torch.
"""
import random

import numpy as np
import torch
from PIL import Image

from . import functional as F


class Random2DTranslation:
    """With probability p, enlarge by 1/8 and crop (height, width) at a random offset;
    otherwise resize straight to (height, width)."""

    def __init__(self, height, width, p=0.5, interpolation=Image.Resampling.BILINEAR):
        self.height, self.width, self.p = height, width, p
        self.interpolation = F.resample(interpolation)

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return F.resize(img, (self.height, self.width), self.interpolation)
        new_w, new_h = round(self.width * 1.125), round(self.height * 1.125)
        resized = F.resize(img, (new_h, new_w), self.interpolation)
        left = round(random.uniform(0, new_w - self.width))
        top = round(random.uniform(0, new_h - self.height))
        return F.crop(resized, top, left, self.height, self.width)

    def __repr__(self):
        return f"Random2DTranslation(height={self.height}, width={self.width}, p={self.p})"


class Cutout:
    """Zero ``n_holes`` squares of side ``length`` in a [C, H, W] tensor (clipped at borders)."""

    def __init__(self, n_holes=1, length=16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img):
        h, w = img.size(1), img.size(2)
        mask = np.ones((h, w), np.float32)
        for _ in range(self.n_holes):
            y, x = np.random.randint(h), np.random.randint(w)
            y1, y2 = np.clip(y - self.length // 2, 0, h), np.clip(y + self.length // 2, 0, h)
            x1, x2 = np.clip(x - self.length // 2, 0, w), np.clip(x + self.length // 2, 0, w)
            mask[y1:y2, x1:x2] = 0.0
        return img * torch.from_numpy(mask).expand_as(img)

    def __repr__(self):
        return f"Cutout(n_holes={self.n_holes}, length={self.length})"


class GaussianNoise:
    """With probability p, add N(mean, std^2) noise to a tensor."""

    def __init__(self, mean=0.0, std=0.15, p=0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return img
        return img + (torch.randn(img.size()) * self.std + self.mean)

    def __repr__(self):
        return f"GaussianNoise(mean={self.mean}, std={self.std}, p={self.p})"


class InstanceNormalization:
    """Per channel of one [C, H, W] image: (x - mean) / (unbiased std + eps)."""

    def __init__(self, eps=1e-8):
        self.eps = eps

    def __call__(self, img):
        c = img.shape[0]
        flat = img.reshape(c, -1)  # [C, H*W]
        mean = flat.mean(1).view(c, 1, 1)
        std = flat.std(1).view(c, 1, 1)
        return (img - mean) / (std + self.eps)

    def __repr__(self):
        return f"InstanceNormalization(eps={self.eps})"
