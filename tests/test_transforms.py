"""Transforms: torchvision's geometry, RNG draw order and numerics; Dassl's build_transform."""
import math
import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance
from yacs.config import CfgNode as CN

from engine.data.transforms import (
    INTERPOLATION_MODES,
    CenterCrop,
    ColorJitter,
    Cutout,
    GaussianBlur,
    GaussianNoise,
    InstanceNormalization,
    Normalize,
    Random2DTranslation,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    build_img0_transform,
    build_transform,
)
from engine.data.transforms import functional as F
from engine.data.transforms.color import adjust_hue

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
RATIO = (3.0 / 4.0, 4.0 / 3.0)


def _input_cfg(**overrides):
    """cfg with Dassl's INPUT defaults (only what build_transform reads)."""
    cfg = CN()
    cfg.INPUT = CN()
    cfg.INPUT.SIZE = (224, 224)
    cfg.INPUT.INTERPOLATION = "bilinear"
    cfg.INPUT.TRANSFORMS = ()
    cfg.INPUT.NO_TRANSFORM = False
    cfg.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
    cfg.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
    cfg.INPUT.CROP_PADDING = 4
    cfg.INPUT.RRCROP_SCALE = (0.08, 1.0)
    cfg.INPUT.CUTOUT_N = 1
    cfg.INPUT.CUTOUT_LEN = 16
    cfg.INPUT.GN_MEAN = 0.0
    cfg.INPUT.GN_STD = 0.15
    cfg.INPUT.COLORJITTER_B = 0.4
    cfg.INPUT.COLORJITTER_C = 0.4
    cfg.INPUT.COLORJITTER_S = 0.4
    cfg.INPUT.COLORJITTER_H = 0.1
    cfg.INPUT.RGS_P = 0.2
    cfg.INPUT.GB_P = 0.5
    cfg.INPUT.GB_K = 21
    for key, value in overrides.items():
        setattr(cfg.INPUT, key, value)
    return cfg


def _coop_cfg():
    return _input_cfg(
        INTERPOLATION="bicubic",
        PIXEL_MEAN=CLIP_MEAN,
        PIXEL_STD=CLIP_STD,
        TRANSFORMS=("random_resized_crop", "random_flip", "normalize"),
    )


def _img(w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))


def _chw(img):
    """Reference ToTensor in numpy: float32 [C, H, W] in [0, 1]."""
    arr = np.asarray(img, dtype=np.float32) / np.float32(255)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _expected_rrc_box(width, height, scale):
    """torchvision's draws written out: uniform(area), uniform(log ratio) per attempt, then
    randint(top), randint(left); None if all 10 attempts miss."""
    log_ratio = torch.log(torch.tensor(RATIO))
    for _ in range(10):
        area = width * height * torch.empty(1).uniform_(scale[0], scale[1]).item()
        ar = torch.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1])).item()
        w, h = round(math.sqrt(area * ar)), round(math.sqrt(area / ar))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, (1,)).item()
            return top, torch.randint(0, width - w + 1, (1,)).item(), h, w
    return None


# ---------------------------------------------------------------- resize and center crop


@pytest.mark.parametrize(
    "w,h,expected",
    [(225, 301, (224, 299)), (301, 225, (299, 224)), (7, 9, (224, 288)), (300, 301, (224, 224)), (3, 5, (224, 373))],
)
def test_resize_shorter_edge_truncates_long_edge(w, h, expected):
    assert Resize(224)(_img(w, h)).size == expected  # (w, h); 224*301/225 = 299.6 -> 299


def test_resize_noop_when_size_already_right_and_tuple_is_exact():
    img = _img(224, 300)
    assert Resize(224)(img) is img and Resize((300, 224))(img) is img
    assert Resize((10, 20))(img).size == (20, 10)  # (h, w) -> PIL (w, h), aspect not kept
    assert Resize([16])(img).size == (16, 21)  # a one-element list is a shorter-edge size


@pytest.mark.parametrize("w,box", [(225, (0, 0)), (226, (1, 0)), (227, (2, 0)), (229, (2, 0)), (231, (4, 0))])
def test_center_crop_offsets_round_half_even(w, box):
    # (w - 224) / 2 = 0.5, 1, 1.5, 2.5, 3.5 -> 0, 1, 2, 2, 4 with Python's half-to-even round
    img = _img(w, 224)
    out = CenterCrop(224)(img)
    left, top = box
    assert out.size == (224, 224)
    assert np.array_equal(np.array(out), np.array(img.crop((left, top, left + 224, top + 224))))


def test_center_crop_pads_when_smaller():
    img = _img(5, 3)
    arr = np.array(CenterCrop((4, 8))(img))  # pad w by 3 (1 left, 2 right), h by 1 (0 top, 1 bottom)
    assert arr.shape == (4, 8, 3)
    assert np.array_equal(arr[0:3, 1:6], np.array(img))
    assert arr[:, 0].sum() == 0 and arr[:, 6:].sum() == 0 and arr[3].sum() == 0
    # one side smaller, the other larger: pad h 3 -> 5 (1 top, 1 bottom), crop w 10 -> 6 at left 2
    img = _img(10, 3, seed=1)
    arr = np.array(CenterCrop((5, 6))(img))
    assert arr.shape == (5, 6, 3)
    assert np.array_equal(arr[1:4], np.array(img)[:, 2:8]) and arr[0].sum() == 0 and arr[4].sum() == 0


@pytest.mark.parametrize(
    "w,h,resized,box",
    [
        (225, 301, (224, 299), (0, 38)),  # top = round(37.5) = 38
        (301, 225, (299, 224), (38, 0)),
        (7, 9, (224, 288), (0, 32)),
        (224, 224, (224, 224), (0, 0)),
    ],
)
def test_test_pipeline_sizes_and_values(w, h, resized, box, capsys):
    tfm = build_transform(_coop_cfg(), is_train=False)
    assert capsys.readouterr().out.splitlines() == [
        "Building transform_test",
        "+ resize the smaller edge to 224",
        "+ 224x224 center crop",
        "+ to torch tensor of range [0, 1]",
        f"+ normalization (mean={CLIP_MEAN}, std={CLIP_STD})",
    ]
    img = _img(w, h)
    x = tfm(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    left, top = box
    ref = img if img.size == resized else img.resize(resized, Image.BICUBIC)
    ref = _chw(ref.crop((left, top, left + 224, top + 224)))
    ref = (ref - np.float32(CLIP_MEAN)[:, None, None]) / np.float32(CLIP_STD)[:, None, None]
    assert np.allclose(x.numpy(), ref, atol=1e-6)


def test_test_pipeline_ignores_train_only_names(capsys):
    cfg = _input_cfg(SIZE=(32, 48), TRANSFORMS=("random_flip", "center_crop", "cutout", "instance_norm"))
    tfm = build_transform(cfg, is_train=False)
    assert capsys.readouterr().out.splitlines() == [
        "Building transform_test",
        "+ resize the smaller edge to 48",
        "+ 32x48 center crop",
        "+ to torch tensor of range [0, 1]",
        "+ instance normalization",
    ]
    assert tfm(_img(60, 50)).shape == (3, 32, 48)


# ---------------------------------------------------------------- random resized crop


def test_random_resized_crop_box_within_scale_and_ratio_bounds():
    img = _img(97, 61)
    area = 97 * 61
    scale = (0.3, 0.7)
    torch.manual_seed(0)
    for _ in range(500):
        i, j, h, w = F.random_resized_crop_params(img, scale, RATIO)
        assert 0 <= i <= 61 - h and 0 <= j <= 97 - w
        # w and h are rounded, so each may be off by 1/2 from the drawn real box
        assert (w + 0.5) * (h + 0.5) >= scale[0] * area and (w - 0.5) * (h - 0.5) <= scale[1] * area
        assert (w + 0.5) / (h - 0.5) >= RATIO[0] and (w - 0.5) / (h + 0.5) <= RATIO[1]


@pytest.mark.parametrize("seed", range(25))
def test_random_resized_crop_rng_draw_order(seed):
    img = _img(97, 61)
    torch.manual_seed(seed)
    got = F.random_resized_crop_params(img, (0.08, 1.0), RATIO)
    after = torch.rand(1)
    torch.manual_seed(seed)
    assert got == _expected_rrc_box(97, 61, (0.08, 1.0))
    assert torch.equal(after, torch.rand(1))  # no extra draws


@pytest.mark.parametrize(
    "w,h,scale,box",
    [
        (400, 10, (0.08, 1.0), (0, 193, 10, 13)),  # too wide: h = H, w = round(10 * 4/3)
        (10, 400, (0.08, 1.0), (193, 0, 13, 10)),  # too tall: w = W, h = round(10 / (3/4))
        (50, 40, (2.0, 3.0), (0, 0, 40, 50)),  # impossible scale, ratio in range: whole image
    ],
)
def test_random_resized_crop_fallback(w, h, scale, box):
    torch.manual_seed(7)
    assert F.random_resized_crop_params(_img(w, h), scale, RATIO) == box
    after = torch.rand(1)
    torch.manual_seed(7)
    for _ in range(10):  # the fallback comes after exactly 10 attempts of two draws each
        torch.empty(1).uniform_(0, 1)
        torch.empty(1).uniform_(0, 1)
    assert torch.equal(after, torch.rand(1))


def test_random_resized_crop_output_and_seeded_repeat():
    tfm = RandomResizedCrop((32, 40), interpolation=INTERPOLATION_MODES["bicubic"])
    img = _img(50, 45)
    torch.manual_seed(3)
    first = [np.array(tfm(img)) for _ in range(5)]
    torch.manual_seed(3)
    again = [np.array(tfm(img)) for _ in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    torch.manual_seed(3)
    i, j, h, w = _expected_rrc_box(50, 45, (0.08, 1.0))
    assert np.array_equal(first[0], np.array(img.crop((j, i, j + w, i + h)).resize((40, 32), Image.BICUBIC)))


# ---------------------------------------------------------------- flip, crop, tensor ops


def test_flip_follows_torch_rand():
    img = _img(6, 4)
    flip = RandomHorizontalFlip()
    torch.manual_seed(0)
    expected = [bool(torch.rand(1) < 0.5) for _ in range(20)]
    torch.manual_seed(0)
    outs = [np.array(flip(img)) for _ in range(20)]
    assert 0 < sum(expected) < 20
    for flipped, out in zip(expected, outs):
        assert np.array_equal(out, np.array(img)[:, ::-1] if flipped else np.array(img))
    assert np.array_equal(np.array(RandomHorizontalFlip(p=1.0)(img)), np.array(img)[:, ::-1])
    assert RandomHorizontalFlip(p=0.0)(img) is img


def test_random_crop_pads_then_draws_top_then_left():
    img = _img(10, 8)
    torch.manual_seed(5)
    out = np.array(RandomCrop((8, 10), padding=4)(img))
    torch.manual_seed(5)
    top, left = torch.randint(0, 16 - 8 + 1, (1,)).item(), torch.randint(0, 18 - 10 + 1, (1,)).item()
    padded = np.pad(np.array(img), ((4, 4), (4, 4), (0, 0)))
    assert np.array_equal(out, padded[top : top + 8, left : left + 10])
    with pytest.raises(ValueError, match="larger than the"):
        RandomCrop(20, padding=1)(img)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_to_tensor_and_normalize_match_numpy(mode):
    img = _img(13, 11, mode=mode)
    x = ToTensor()(img)
    channels = 3 if mode == "RGB" else 1
    assert x.shape == (channels, 11, 13) and x.dtype == torch.float32
    assert np.array_equal(x.numpy(), _chw(img))
    mean, std = [0.1, 0.5, 0.9][:channels], [0.2, 0.3, 0.25][:channels]
    y = Normalize(mean, std)(x)
    ref = (_chw(img) - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None]
    assert np.allclose(y.numpy(), ref, atol=1e-6)


def test_to_tensor_bilevel_and_unsupported_modes():
    bits = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8)).convert("1")
    assert ToTensor()(bits).tolist() == [[[0.0, 1.0], [1.0, 0.0]]]
    with pytest.raises(ValueError, match="mode 'F'.*convert"):
        ToTensor()(Image.new("F", (2, 2)))
    with pytest.raises(ValueError, match="contains zero"):
        Normalize([0.5], [0.0])


def test_instance_norm_matches_numpy():
    x = torch.rand(3, 5, 7)
    flat = x.numpy().reshape(3, -1)
    ref = (x.numpy() - flat.mean(1)[:, None, None]) / (flat.std(1, ddof=1)[:, None, None] + 1e-8)
    assert np.allclose(InstanceNormalization()(x).numpy(), ref, atol=1e-5)


# ---------------------------------------------------------------- Dassl's own augmentations


def test_random_2d_translation_uses_python_random():
    img = _img(40, 30)
    tfm = Random2DTranslation(16, 24)
    for seed in range(6):
        random.seed(seed)
        out = np.array(tfm(img))
        random.seed(seed)
        if random.uniform(0, 1) > 0.5:
            ref = img.resize((24, 16), Image.BILINEAR)
        else:  # enlarge to (18, 27), crop at rounded uniform offsets (left drawn first)
            left, top = round(random.uniform(0, 3)), round(random.uniform(0, 2))
            ref = img.resize((27, 18), Image.BILINEAR).crop((left, top, left + 24, top + 16))
        assert out.shape == (16, 24, 3) and np.array_equal(out, np.array(ref))


def test_cutout_uses_numpy_rng():
    x = torch.ones(3, 20, 30)
    np.random.seed(4)
    out = Cutout(n_holes=2, length=8)(x)
    np.random.seed(4)
    mask = np.ones((20, 30), np.float32)
    for _ in range(2):
        y, x0 = np.random.randint(20), np.random.randint(30)
        mask[max(y - 4, 0) : min(y + 4, 20), max(x0 - 4, 0) : min(x0 + 4, 30)] = 0
    assert np.array_equal(out.numpy(), np.broadcast_to(mask, (3, 20, 30)))
    assert (out == 0).any()


def test_gaussian_noise_coin_from_python_noise_from_torch():
    x = torch.zeros(3, 4, 4)
    tfm = GaussianNoise(mean=0.5, std=0.1)
    for seed in range(6):
        random.seed(seed)
        torch.manual_seed(seed)
        out = tfm(x)
        random.seed(seed)
        torch.manual_seed(seed)
        ref = x if random.uniform(0, 1) > 0.5 else x + torch.randn(3, 4, 4) * 0.1 + 0.5
        assert torch.equal(out, ref)


# ---------------------------------------------------------------- colour and blur


def test_color_jitter_order_and_factors_follow_torch_rng():
    img = _img(16, 12)
    tfm = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    assert tfm.brightness == (0.6, 1.4) and tfm.hue == (-0.1, 0.1)
    for seed in range(4):
        torch.manual_seed(seed)
        out = np.array(tfm(img))
        torch.manual_seed(seed)
        order = torch.randperm(4).tolist()
        factors = [float(torch.empty(1).uniform_(lo, hi)) for lo, hi in [(0.6, 1.4)] * 3 + [(-0.1, 0.1)]]
        ref = img
        enhancers = [ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color]
        for k in order:
            ref = enhancers[k](ref).enhance(factors[k]) if k < 3 else adjust_hue(ref, factors[k])
        assert np.array_equal(out, np.array(ref))
    assert ColorJitter(brightness=0, hue=0).brightness is None  # disabled ranges draw nothing


@pytest.mark.parametrize("factor", [0.1, -0.1, 0.5])
def test_adjust_hue_wraps_hue_channel(factor):
    img = _img(8, 6)
    h, s, v = [np.array(c) for c in img.convert("HSV").split()]
    shifted = ((h.astype(int) + int(factor * 255)) % 256).astype(np.uint8)  # truncated, wrapped
    ref = Image.merge("HSV", [Image.fromarray(c) for c in (shifted, s, v)]).convert("RGB")
    assert np.array_equal(np.array(adjust_hue(img, factor)), np.array(ref))
    assert adjust_hue(img.convert("L"), factor).mode == "L"


def test_random_grayscale_keeps_channels():
    img = _img(9, 7)
    torch.manual_seed(1)
    flags = [bool(torch.rand(1) < 0.5) for _ in range(10)]
    torch.manual_seed(1)
    outs = [np.array(RandomGrayscale(p=0.5)(img)) for _ in range(10)]
    gray = np.array(img.convert("L"))
    assert 0 < sum(flags) < 10
    for flag, out in zip(flags, outs):
        assert out.shape == (7, 9, 3)
        assert np.array_equal(out, np.dstack([gray] * 3) if flag else np.array(img))


def test_gaussian_blur_matches_numpy_convolution():
    img = _img(30, 20)
    torch.manual_seed(2)
    out = np.array(GaussianBlur(5, sigma=(0.5, 1.5))(img)).astype(int)
    torch.manual_seed(2)
    sigma = torch.empty(1).uniform_(0.5, 1.5).item()
    k = np.exp(-0.5 * (np.arange(-2, 3) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(np.array(img, dtype=np.float64), ((2, 2), (2, 2), (0, 0)), mode="reflect")
    rows = sum(k[d] * padded[d : d + 20] for d in range(5))
    ref = np.round(sum(k[d] * rows[:, d : d + 30] for d in range(5)))
    assert np.abs(out - ref).max() <= 1 and np.mean(out == ref) > 0.99
    flat = Image.new("RGB", (30, 20), (10, 200, 77))
    assert np.array_equal(np.array(GaussianBlur(21)(flat)), np.array(flat))
    with pytest.raises(ValueError, match="odd and positive"):
        GaussianBlur(4)


def test_random_apply_skips_when_p_below_rand():
    torch.manual_seed(0)
    draws = [torch.rand(1).item() for _ in range(10)]
    torch.manual_seed(0)
    hits = [RandomApply([lambda x: x + 1], p=0.5)(0) for _ in range(10)]
    assert hits == [0 if 0.5 < d else 1 for d in draws]


# ---------------------------------------------------------------- build_transform


def test_coop_train_pipeline_prints_and_computes(capsys):
    tfm = build_transform(_coop_cfg(), is_train=True)
    assert capsys.readouterr().out.splitlines() == [
        "Building transform_train",
        "+ random resized crop (size=(224, 224), scale=(0.08, 1.0))",
        "+ random flip",
        "+ to torch tensor of range [0, 1]",
        f"+ normalization (mean={CLIP_MEAN}, std={CLIP_STD})",
    ]
    img = _img(300, 250)
    torch.manual_seed(11)
    x = tfm(img)
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32
    torch.manual_seed(11)
    i, j, h, w = _expected_rrc_box(300, 250, (0.08, 1.0))
    ref = img.crop((j, i, j + w, i + h)).resize((224, 224), Image.BICUBIC)
    if torch.rand(1) < 0.5:
        ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
    ref = (_chw(ref) - np.float32(CLIP_MEAN)[:, None, None]) / np.float32(CLIP_STD)[:, None, None]
    assert np.allclose(x.numpy(), ref, atol=1e-6)
    for size in [(33, 27), (500, 20), (224, 224)]:
        assert tfm(_img(*size)).shape == (3, 224, 224)


def test_train_order_fixed_by_code_not_by_list(capsys):
    names = ["instance_norm", "gaussian_noise", "normalize", "cutout", "gaussian_blur", "randomgrayscale",
             "colorjitter", "random_flip", "random_crop", "random_translation"]
    tfm = build_transform(_input_cfg(SIZE=(32, 32), TRANSFORMS=names), is_train=True)
    assert capsys.readouterr().out.splitlines() == [
        "Building transform_train",
        "+ random translation",
        "+ random crop (padding = 4)",
        "+ random flip",
        "+ color jitter (brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)",
        "+ random gray scale",
        "+ gaussian blur (kernel=21)",
        "+ to torch tensor of range [0, 1]",
        "+ cutout (n_holes=1, length=16)",
        "+ normalization (mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])",
        "+ gaussian noise (mean=0.0, std=0.15)",
        "+ instance normalization",
    ]
    kinds = [type(t).__name__ for t in tfm.transforms]
    assert kinds == ["Random2DTranslation", "RandomCrop", "RandomHorizontalFlip", "ColorJitter", "RandomGrayscale",
                     "RandomApply", "ToTensor", "Cutout", "Normalize", "GaussianNoise", "InstanceNormalization"]
    assert tfm(_img(50, 40)).shape == (3, 32, 32)


def test_train_without_crop_resizes_exactly(capsys):
    tfm = build_transform(_input_cfg(SIZE=(20, 30)), is_train=True)
    assert capsys.readouterr().out.splitlines() == [
        "Building transform_train", "+ resize to 20x30", "+ to torch tensor of range [0, 1]"]
    img = _img(64, 48)
    assert np.array_equal(tfm(img).numpy(), _chw(img.resize((30, 20), Image.BILINEAR)))


def test_no_transform_and_choices_override(capsys):
    assert build_transform(_input_cfg(NO_TRANSFORM=True, TRANSFORMS=("bogus",))) is None
    assert capsys.readouterr().out == "Note: no transform is applied!\n"
    tfm = build_transform(_input_cfg(TRANSFORMS=("bogus",)), choices=["random_flip"])
    assert "+ random flip" in capsys.readouterr().out and len(tfm.transforms) == 3


def test_img0_transform_is_exact_resize():
    cfg = _coop_cfg()
    img = _img(50, 70)
    x = build_img0_transform(cfg)(img)
    ref = (_chw(img.resize((224, 224), Image.BICUBIC)) - np.float32(CLIP_MEAN)[:, None, None]) / np.float32(
        CLIP_STD)[:, None, None]
    assert np.allclose(x.numpy(), ref, atol=1e-6)


def test_pipeline_pickles_and_repeats():
    tfm = build_transform(_coop_cfg(), is_train=True)
    clone = pickle.loads(pickle.dumps(tfm))
    img = _img(80, 60)
    torch.manual_seed(9)
    a = tfm(img)
    torch.manual_seed(9)
    assert torch.equal(a, clone(img))
    text = repr(clone)
    assert "RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0), ratio=(0.75, 1.3333), interpolation=bicubic)" in text
    assert "RandomHorizontalFlip(p=0.5)" in text and f"Normalize(mean={CLIP_MEAN}" in text


def test_unknown_transform_names_give_one_clear_error():
    cfg = _input_cfg(TRANSFORMS=("random_flip", "randaugment", "sharpen"))
    with pytest.raises(ValueError) as err:
        build_transform(cfg)
    msg = str(err.value)
    assert "['randaugment', 'sharpen']" in msg and "INPUT.TRANSFORMS" in msg
    assert "not implemented" in msg and "supported are: random_flip, random_resized_crop" in msg
    with pytest.raises(ValueError, match="must be a list of names"):
        build_transform(_input_cfg(TRANSFORMS="normalize"))


def test_unknown_interpolation_and_bad_size_errors():
    with pytest.raises(ValueError, match='Unknown INPUT.INTERPOLATION "lanczos": supported are bilinear, bicubic, nearest'):
        build_transform(_input_cfg(INTERPOLATION="lanczos"), is_train=False)
    assert Resize(8, interpolation="bicubic").interpolation == Image.BICUBIC
    with pytest.raises(ValueError, match="Unsupported interpolation 7"):
        RandomResizedCrop(8, interpolation=7)
    with pytest.raises(ValueError, match="INPUT.SIZE must be a"):
        build_transform(_input_cfg(SIZE=(224,)))
    with pytest.raises(ValueError, match="INPUT.RRCROP_SCALE"):
        build_transform(_input_cfg(RRCROP_SCALE=(1.0, 0.08), TRANSFORMS=("random_resized_crop",)))
