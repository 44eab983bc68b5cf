"""The test-time views of one image (TPT's AugMixAugmenter, on PIL without torchvision).

View 0 is the original: resize the shorter edge to the resolution (bicubic), center crop.
Views 1..N-1 each start from a random resized crop (bilinear, scale 0.08-1) + horizontal
flip of the raw image; with AugMix (the fine-grained sets) the crop is then mixed with
three chains of AugMix ops. All views are CLIP-normalised tensors.

Every image gets its own RNG streams, seeded from (seed, image index): the views of an
image do not depend on which images came before it, on the loader's workers, or on the
global RNG state.
"""
import numpy as np
import torch

from engine.data.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    RandomApply,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
)

from .augmix import augmix

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def preprocess(img):
    """RGB PIL image -> CLIP-normalised float32 array [3, H, W]: ToTensor + Normalize, in numpy.

    The same float32 operations as the torch transforms, so the same values; numpy keeps the
    64 x 4 conversions of an AugMix image off torch's thread pool.
    """
    x = np.asarray(img, dtype=np.float32) / np.float32(255)  # [H, W, 3]
    x = (x - np.asarray(CLIP_MEAN, dtype=np.float32)) / np.asarray(CLIP_STD, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def preaugment(resolution, hard_aug=False):
    """The random crop every augmented view starts from (BYOL's recipe with ``hard_aug``)."""
    if hard_aug:
        return Compose([
            RandomResizedCrop(resolution, scale=(0.2, 1.0)),
            RandomApply([ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.5),
            RandomGrayscale(p=0.2),
            RandomApply([GaussianBlur(3, sigma=(0.1, 2.0))], p=0.1),
            RandomHorizontalFlip(),
        ])
    return Compose([RandomResizedCrop(resolution), RandomHorizontalFlip()])


class ViewBuilder:
    """PIL image -> [n_views, 3, resolution, resolution]: the original, then n_views - 1 augmented views."""

    def __init__(self, resolution, n_views, use_augmix=False, hard_aug=False, seed=0):
        if n_views < 1:
            raise ValueError(f"the number of views (--batch_size) must be at least 1, got {n_views}")
        self.resolution = resolution
        self.n_views = n_views
        self.use_augmix = use_augmix
        self.seed = seed
        self.base = Compose([Resize(resolution, interpolation="bicubic"), CenterCrop(resolution)])
        self.crop = preaugment(resolution, hard_aug)

    def __call__(self, img, index):
        seeds = np.random.SeedSequence([self.seed, index]).generate_state(2)
        rng = np.random.RandomState(seeds[0])  # AugMix draws
        views = [preprocess(self.base(img))]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seeds[1]))  # crop and flip draws (the transforms use the torch RNG)
            for _ in range(self.n_views - 1):
                crop = self.crop(img)
                if self.use_augmix:
                    views.append(augmix(crop, preprocess, rng, self.resolution))
                else:
                    views.append(preprocess(crop))
        return torch.from_numpy(np.stack(views))  # [n_views, 3, H, W]
