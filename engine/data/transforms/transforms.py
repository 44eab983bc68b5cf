"""Dassl's build_transform on top of functional.py (no torchvision)."""
import random

import numpy as np
import torch
from PIL import Image

from . import functional as F

# names accepted by build_transform; Dassl's AutoAugment/RandAugment policies, colour jitter,
# grayscale and blur are not implemented here and are rejected with a clear error.
SUPPORTED_TRANSFORMS = (
    "random_flip",
    "random_resized_crop",
    "normalize",
    "instance_norm",
    "random_crop",
    "random_translation",
    "center_crop",
    "cutout",
    "gaussian_noise",
)


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    def __init__(self, size, interpolation=Image.BILINEAR):
        self.size = size
        self.interpolation = interpolation

    def __call__(self, img):
        return F.resize(img, self.size, self.interpolation)

    def __repr__(self):
        return f"Resize(size={self.size})"


class CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img):
        return F.center_crop(img, self.size)

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class RandomResizedCrop:
    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation=Image.BILINEAR):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio, self.interpolation = tuple(scale), tuple(ratio), interpolation

    def __call__(self, img):
        i, j, h, w = F.random_resized_crop_params(img, self.scale, self.ratio)
        return F.resize(F.crop(img, i, j, h, w), self.size, self.interpolation)

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if torch.rand(1) < self.p:
            return img.transpose(Image.FLIP_LEFT_RIGHT)
        return img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomCrop:
    """torchvision's RandomCrop(size, padding) with zero padding on all sides."""

    def __init__(self, size, padding=0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = padding

    def __call__(self, img):
        if self.padding > 0:
            p = self.padding
            img = F.pad(img, p, p, p, p)
        w, h = img.size
        th, tw = self.size
        if w < tw or h < th:
            raise ValueError(f"Required crop size {(th, tw)} is larger than the padded image size {(h, w)}")
        if w == tw and h == th:
            return img
        i = torch.randint(0, h - th + 1, size=(1,)).item()
        j = torch.randint(0, w - tw + 1, size=(1,)).item()
        return F.crop(img, i, j, th, tw)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class Random2DTranslation:
    """Dassl's: half the time a plain resize, else enlarge by 1/8 and crop at a random offset."""

    def __init__(self, height, width, p=0.5, interpolation=Image.BILINEAR):
        self.height, self.width, self.p, self.interpolation = height, width, p, interpolation

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return img.resize((self.width, self.height), self.interpolation)
        new_w, new_h = int(round(self.width * 1.125)), int(round(self.height * 1.125))
        resized = img.resize((new_w, new_h), self.interpolation)
        x1 = int(round(random.uniform(0, new_w - self.width)))
        y1 = int(round(random.uniform(0, new_h - self.height)))
        return resized.crop((x1, y1, x1 + self.width, y1 + self.height))

    def __repr__(self):
        return f"Random2DTranslation(height={self.height}, width={self.width})"


class ToTensor:
    def __call__(self, img):
        return F.to_tensor(img)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = list(mean), list(std)

    def __call__(self, tensor):
        return F.normalize(tensor, self.mean, self.std)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class InstanceNormalization:
    """Per-channel (x - mean) / (unbiased std + eps) of one image tensor."""

    def __init__(self, eps=1e-8):
        self.eps = eps

    def __call__(self, img):
        c = img.shape[0]
        flat = img.reshape(c, -1)
        mean = flat.mean(1).view(c, 1, 1)
        std = flat.std(1).view(c, 1, 1)
        return (img - mean) / (std + self.eps)

    def __repr__(self):
        return "InstanceNormalization()"


class Cutout:
    """Zero ``n_holes`` square patches of side ``length`` (centres from NumPy's RNG)."""

    def __init__(self, n_holes=1, length=16):
        self.n_holes, self.length = n_holes, length

    def __call__(self, img):
        h, w = img.shape[1], img.shape[2]
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
    """With probability p (Python RNG), add N(mean, std) noise from the torch RNG."""

    def __init__(self, mean=0, std=0.15, p=0.5):
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img):
        if random.uniform(0, 1) > self.p:
            return img
        return img + torch.randn(img.size()) * self.std + self.mean

    def __repr__(self):
        return f"GaussianNoise(mean={self.mean}, std={self.std})"


def _check_choices(choices):
    unknown = [c for c in choices if c not in SUPPORTED_TRANSFORMS]
    if unknown:
        raise ValueError(
            f"Unsupported transform {unknown} in INPUT.TRANSFORMS; supported are: {', '.join(SUPPORTED_TRANSFORMS)}"
        )


def build_transform(cfg, is_train=True, choices=None):
    """Dassl's transform pipeline for training or testing (the order is fixed, not the list's)."""
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    if choices is None:
        choices = cfg.INPUT.TRANSFORMS
    _check_choices(choices)
    target_size = f"{cfg.INPUT.SIZE[0]}x{cfg.INPUT.SIZE[1]}"
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_transform_train(cfg, choices, target_size, normalize)
    return _build_transform_test(cfg, choices, target_size, normalize)


def _build_transform_train(cfg, choices, target_size, normalize):
    print("Building transform_train")
    tfm = []
    interp = F.interpolation(cfg.INPUT.INTERPOLATION)
    input_size = tuple(cfg.INPUT.SIZE)

    conditions = [] + (["random_crop"] if "random_crop" in choices else [])
    conditions += ["random_resized_crop"] if "random_resized_crop" in choices else []
    if not conditions:
        print(f"+ resize to {target_size}")
        tfm.append(Resize(input_size, interpolation=interp))
    if "random_translation" in choices:
        print("+ random translation")
        tfm.append(Random2DTranslation(input_size[0], input_size[1]))
    if "random_crop" in choices:
        print(f"+ random crop (padding = {cfg.INPUT.CROP_PADDING})")
        tfm.append(RandomCrop(input_size, padding=cfg.INPUT.CROP_PADDING))
    if "random_resized_crop" in choices:
        s_ = tuple(cfg.INPUT.RRCROP_SCALE)
        print(f"+ random resized crop (size={input_size}, scale={s_})")
        tfm.append(RandomResizedCrop(input_size, scale=s_, interpolation=interp))
    if "random_flip" in choices:
        print("+ random flip")
        tfm.append(RandomHorizontalFlip())
    print("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "cutout" in choices:
        print(f"+ cutout (n_holes={cfg.INPUT.CUTOUT_N}, length={cfg.INPUT.CUTOUT_LEN})")
        tfm.append(Cutout(cfg.INPUT.CUTOUT_N, cfg.INPUT.CUTOUT_LEN))
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    if "gaussian_noise" in choices:
        print(f"+ gaussian noise (mean={cfg.INPUT.GN_MEAN}, std={cfg.INPUT.GN_STD})")
        tfm.append(GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD))
    if "instance_norm" in choices:
        print("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)


def _build_transform_test(cfg, choices, target_size, normalize):
    print("Building transform_test")
    interp = F.interpolation(cfg.INPUT.INTERPOLATION)
    input_size = tuple(cfg.INPUT.SIZE)
    print(f"+ resize the smaller edge to {max(input_size)}")
    tfm = [Resize(max(input_size), interpolation=interp)]
    print(f"+ {target_size} center crop")
    tfm.append(CenterCrop(input_size))
    print("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "normalize" in choices:
        print(f"+ normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})")
        tfm.append(normalize)
    if "instance_norm" in choices:
        print("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)


def build_img0_transform(cfg):
    """Dassl's ``img0``: exact resize to INPUT.SIZE, to tensor, normalise if chosen."""
    tfm = [Resize(tuple(cfg.INPUT.SIZE), interpolation=F.interpolation(cfg.INPUT.INTERPOLATION)), ToTensor()]
    if "normalize" in cfg.INPUT.TRANSFORMS:
        tfm.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
    return Compose(tfm)
