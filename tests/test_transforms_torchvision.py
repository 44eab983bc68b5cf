"""Our PIL transforms (engine/data/transforms) against torchvision's on the same images and seeds.

torchvision is not a dependency, and its wheels are built for one torch build (with CPU-only
torch it fails with "operator torchvision::nms does not exist"): the whole module skips where
it does not import. The GPU check (bench/gpu_check.sh) runs it where it does.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import transforms as ours

try:  # any error: not installed, or built for another torch
    from torchvision import transforms as tv
except Exception as e:  # noqa: BLE001
    pytest.skip(f"torchvision does not import here ({type(e).__name__}: {e})", allow_module_level=True)

SIZES = [(53, 37), (64, 48), (30, 20), (224, 160)]  # (width, height)
SEEDS = range(8)
MEAN, STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]


def _images():
    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 256, size=(h, w, 3), dtype=np.uint8)) for w, h in SIZES]


def _same(a, b):
    if isinstance(a, Image.Image):
        assert a.mode == b.mode and a.size == b.size
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def _compare(ours_t, tv_t):
    """Both transforms on every image, each call after the same torch seed."""
    for img in _images():
        for seed in SEEDS:
            torch.manual_seed(seed)
            a = ours_t(img)
            torch.manual_seed(seed)
            b = tv_t(img)
            _same(a, b)


@pytest.mark.parametrize("interp", ["bilinear", "bicubic", "nearest"])
def test_resize_and_center_crop(interp):
    mode = getattr(tv.InterpolationMode, interp.upper())
    _compare(ours.Resize(40, interpolation=interp), tv.Resize(40, interpolation=mode))
    _compare(ours.Resize((33, 21), interpolation=interp), tv.Resize((33, 21), interpolation=mode))
    _compare(ours.CenterCrop(24), tv.CenterCrop(24))
    _compare(ours.CenterCrop((70, 41)), tv.CenterCrop((70, 41)))  # larger than some images: zero padding


def test_random_resized_crop_flip_and_crop():
    mode = tv.InterpolationMode.BICUBIC
    _compare(ours.RandomResizedCrop(32, scale=(0.08, 1.0), interpolation="bicubic"),
             tv.RandomResizedCrop(32, scale=(0.08, 1.0), interpolation=mode))
    _compare(ours.RandomResizedCrop((24, 32), scale=(0.5, 1.0), ratio=(0.5, 2.0)),
             tv.RandomResizedCrop((24, 32), scale=(0.5, 1.0), ratio=(0.5, 2.0)))
    _compare(ours.RandomHorizontalFlip(0.5), tv.RandomHorizontalFlip(0.5))
    _compare(ours.RandomCrop(16, padding=4), tv.RandomCrop(16, padding=4))


def test_colour_and_blur():
    _compare(ours.ColorJitter(0.4, 0.4, 0.4, 0.1), tv.ColorJitter(0.4, 0.4, 0.4, 0.1))
    _compare(ours.ColorJitter(hue=0.5), tv.ColorJitter(hue=0.5))
    _compare(ours.RandomGrayscale(0.5), tv.RandomGrayscale(0.5))
    _compare(ours.GaussianBlur(5, sigma=(0.1, 2.0)), tv.GaussianBlur(5, sigma=(0.1, 2.0)))
    _compare(ours.RandomApply([ours.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
             tv.RandomApply([tv.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8))


def test_clip_train_and_test_pipelines():
    mode = tv.InterpolationMode.BICUBIC
    train_ours = ours.Compose([ours.RandomResizedCrop(224, scale=(0.08, 1.0), interpolation="bicubic"),
                               ours.RandomHorizontalFlip(), ours.ToTensor(), ours.Normalize(MEAN, STD)])
    train_tv = tv.Compose([tv.RandomResizedCrop(224, scale=(0.08, 1.0), interpolation=mode),
                           tv.RandomHorizontalFlip(), tv.ToTensor(), tv.Normalize(MEAN, STD)])
    _compare(train_ours, train_tv)
    test_ours = ours.Compose([ours.Resize(224, interpolation="bicubic"), ours.CenterCrop(224), ours.ToTensor(),
                              ours.Normalize(MEAN, STD)])
    test_tv = tv.Compose([tv.Resize(224, interpolation=mode), tv.CenterCrop(224), tv.ToTensor(),
                          tv.Normalize(MEAN, STD)])
    _compare(test_ours, test_tv)
