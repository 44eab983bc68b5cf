import math

import numpy as np
import pytest
import torch
from PIL import Image

from engine.config import get_cfg_default
from engine.data.transforms import CenterCrop, RandomResizedCrop, Resize, build_transform
from engine.data.transforms import functional as F

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _img(w, h, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _coop_cfg():
    cfg = get_cfg_default()
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = CLIP_MEAN, CLIP_STD
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    return cfg


@pytest.mark.parametrize("w,h,expected", [(225, 301, (224, 299)), (301, 225, (299, 224)), (7, 9, (224, 288)),
                                          (224, 224, (224, 224)), (300, 301, (224, 224))])
def test_resize_shorter_edge_truncates_long_edge(w, h, expected):
    assert Resize(224)(_img(w, h)).size == expected  # (w, h); int(224 * long / short)


def test_resize_noop_when_already_right():
    img = _img(224, 300)
    assert Resize(224)(img) is img


@pytest.mark.parametrize("w,h,box", [(225, 301, (0, 38, 224, 262)), (227, 229, (2, 2, 226, 226)),
                                     (226, 224, (1, 0, 225, 224))])
def test_center_crop_offsets_round_half_even(w, h, box):
    img = _img(w, h)
    out = CenterCrop((224, 224))(img)
    assert out.size == (224, 224)
    assert np.array_equal(np.array(out), np.array(img.crop(box)))


def test_center_crop_pads_when_smaller():
    img = _img(5, 3)
    out = F.center_crop(img, (4, 8))  # (h, w): pad width by 3 (1 left, 2 right), height by 1 (0 top, 1 bottom)
    arr = np.array(out)
    assert out.size == (8, 4)
    assert np.array_equal(arr[0:3, 1:6], np.array(img)) and arr[:, 0].sum() == 0 and arr[3].sum() == 0


def test_test_pipeline_sizes_and_values(capsys):
    tfm = build_transform(_coop_cfg(), is_train=False)
    out = capsys.readouterr().out.splitlines()
    assert out == ["Building transform_test", "+ resize the smaller edge to 224", "+ 224x224 center crop",
                   "+ to torch tensor of range [0, 1]",
                   f"+ normalization (mean={CLIP_MEAN}, std={CLIP_STD})"]
    img = _img(301, 225)
    x = tfm(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    ref = np.array(img.resize((299, 224), Image.BICUBIC).crop((38, 0, 262, 224)), dtype=np.float32) / 255
    ref = (ref - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    assert np.allclose(x.permute(1, 2, 0).numpy(), ref, atol=1e-5)


def test_train_pipeline_prints_and_shapes(capsys):
    tfm = build_transform(_coop_cfg(), is_train=True)
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == ["Building transform_train", "+ random resized crop (size=(224, 224), scale=(0.08, 1.0))",
                       "+ random flip", "+ to torch tensor of range [0, 1]"]
    for w, h in [(33, 27), (500, 20), (224, 224)]:
        x = tfm(_img(w, h))
        assert x.shape == (3, 224, 224) and x.dtype == torch.float32


def _expected_rrc_box(width, height, scale, ratio):
    """torchvision's draw order written out: uniform(area), uniform(log-ratio), randint(i), randint(j)."""
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        ta = width * height * torch.empty(1).uniform_(scale[0], scale[1]).item()
        ar = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1]).item())
        w, h = int(round(math.sqrt(ta * ar))), int(round(math.sqrt(ta / ar)))
        if 0 < w <= width and 0 < h <= height:
            return torch.randint(0, height - h + 1, (1,)).item(), torch.randint(0, width - w + 1, (1,)).item(), h, w
    return None


def test_random_resized_crop_rng_order_and_bounds():
    img = _img(97, 61)
    for seed in range(30):
        torch.manual_seed(seed)
        i, j, h, w = F.random_resized_crop_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
        torch.manual_seed(seed)
        assert (i, j, h, w) == _expected_rrc_box(97, 61, (0.08, 1.0), (3 / 4, 4 / 3))
        assert 0 <= i <= 61 - h and 0 <= j <= 97 - w
        # bounds up to the rounding of w and h
        assert 0.08 * 97 * 61 * 0.8 <= w * h <= 97 * 61
        assert 3 / 4 * 0.8 <= w / h <= 4 / 3 * 1.25


def test_random_resized_crop_fallback_is_central():
    img = _img(400, 10)  # extreme aspect: no draw fits, so the ratio-clamped centre crop
    torch.manual_seed(0)
    i, j, h, w = F.random_resized_crop_params(img, (0.9, 1.0), (3 / 4, 4 / 3))
    assert (h, w) == (10, 13) and (i, j) == (0, (400 - 13) // 2)


def test_seeded_runs_repeat_exactly():
    tfm = RandomResizedCrop((32, 32), interpolation=Image.BICUBIC)
    img = _img(50, 40)
    torch.manual_seed(3)
    a = [np.array(tfm(img)) for _ in range(5)]
    torch.manual_seed(3)
    b = [np.array(tfm(img)) for _ in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_flip_uses_torch_rng():
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = ("random_flip",)
    cfg.INPUT.SIZE = (4, 6)
    tfm = build_transform(cfg, is_train=True)
    img = _img(6, 4)
    torch.manual_seed(0)
    flips = [bool(torch.rand(1) < 0.5) for _ in range(8)]
    torch.manual_seed(0)
    outs = [tfm(img) for _ in range(8)]
    base = torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255
    for flipped, out in zip(flips, outs):
        assert torch.allclose(out, base.flip(-1) if flipped else base)


def test_unknown_transform_and_interpolation_errors():
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = ("random_flip", "randaugment")
    with pytest.raises(ValueError, match=r"Unsupported transform \['randaugment'\].*random_resized_crop"):
        build_transform(cfg)
    cfg.INPUT.TRANSFORMS = ("normalize",)
    cfg.INPUT.INTERPOLATION = "lanczos"
    with pytest.raises(ValueError, match='Unknown INPUT.INTERPOLATION "lanczos"'):
        build_transform(cfg)
