"""Dassl's ``build_transform``: the train/test pipelines from cfg.INPUT, with its log lines.

The train pipeline's order is fixed here, not by the order of INPUT.TRANSFORMS.
"""
from . import functional as F
from .dassl_ops import Cutout, GaussianNoise, InstanceNormalization, Random2DTranslation
from .transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianBlur,
    Normalize,
    RandomApply,
    RandomCrop,
    RandomGrayscale,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

# names build_transform accepts ("center_crop" is accepted and does nothing: the test
# pipeline always center-crops, the train pipeline never does, as in Dassl)
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
    "colorjitter",
    "randomgrayscale",
    "gaussian_blur",
)

# Dassl's AutoAugment / RandAugment names, not implemented here
_NOT_IMPLEMENTED = ("imagenet_policy", "cifar10_policy", "svhn_policy", "randaugment", "randaugment_fixmatch", "randaugment2")


def check_choices(choices):
    """Reject, in one error, every name build_transform cannot build."""
    if isinstance(choices, str):
        raise ValueError(f"INPUT.TRANSFORMS must be a list of names, got the string {choices!r}; write [{choices!r}]")
    unknown = [c for c in choices if c not in SUPPORTED_TRANSFORMS]
    if unknown:
        dassl_only = [c for c in unknown if c in _NOT_IMPLEMENTED]
        note = f" ({', '.join(dassl_only)}: Dassl's AutoAugment/RandAugment, not implemented)" if dassl_only else ""
        raise ValueError(
            f"Unsupported transform name(s) {unknown} in INPUT.TRANSFORMS{note}; "
            f"supported are: {', '.join(SUPPORTED_TRANSFORMS)}"
        )


def _check_size(size):
    ok = isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)
    if not ok:
        raise ValueError(f"INPUT.SIZE must be a (height, width) pair of positive ints, got {size!r}")


def build_transform(cfg, is_train=True, choices=None):
    """Training or test pipeline from cfg.INPUT; None (with a note) when INPUT.NO_TRANSFORM.

    ``choices`` overrides cfg.INPUT.TRANSFORMS when given.
    """
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    if choices is None:
        choices = cfg.INPUT.TRANSFORMS
    check_choices(choices)
    _check_size(cfg.INPUT.SIZE)
    interp = F.interpolation(cfg.INPUT.INTERPOLATION)
    target_size = f"{cfg.INPUT.SIZE[0]}x{cfg.INPUT.SIZE[1]}"
    normalize = Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    if is_train:
        return _build_train(cfg, choices, target_size, interp, normalize)
    return _build_test(cfg, choices, target_size, interp, normalize)


def _build_train(cfg, choices, target_size, interp, normalize):
    print("Building transform_train")
    inp = cfg.INPUT
    size = F.pair(inp.SIZE)
    tfm = []
    # without a crop that outputs SIZE, resize straight to it
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        print(f"+ resize to {target_size}")
        tfm.append(Resize(size, interpolation=interp))
    if "random_translation" in choices:
        print("+ random translation")
        tfm.append(Random2DTranslation(size[0], size[1]))
    if "random_crop" in choices:
        print(f"+ random crop (padding = {inp.CROP_PADDING})")
        tfm.append(RandomCrop(size, padding=inp.CROP_PADDING))
    if "random_resized_crop" in choices:
        print(f"+ random resized crop (size={inp.SIZE}, scale={inp.RRCROP_SCALE})")
        tfm.append(RandomResizedCrop(size, scale=inp.RRCROP_SCALE, interpolation=interp))
    if "random_flip" in choices:
        print("+ random flip")
        tfm.append(RandomHorizontalFlip())
    if "colorjitter" in choices:
        b, c, s, h = inp.COLORJITTER_B, inp.COLORJITTER_C, inp.COLORJITTER_S, inp.COLORJITTER_H
        print(f"+ color jitter (brightness={b}, contrast={c}, saturation={s}, hue={h})")
        tfm.append(ColorJitter(brightness=b, contrast=c, saturation=s, hue=h))
    if "randomgrayscale" in choices:
        print("+ random gray scale")
        tfm.append(RandomGrayscale(p=inp.RGS_P))
    if "gaussian_blur" in choices:
        print(f"+ gaussian blur (kernel={inp.GB_K})")
        tfm.append(RandomApply([GaussianBlur(inp.GB_K)], p=inp.GB_P))
    print("+ to torch tensor of range [0, 1]")
    tfm.append(ToTensor())
    if "cutout" in choices:
        print(f"+ cutout (n_holes={inp.CUTOUT_N}, length={inp.CUTOUT_LEN})")
        tfm.append(Cutout(inp.CUTOUT_N, inp.CUTOUT_LEN))
    if "normalize" in choices:
        print(f"+ normalization (mean={inp.PIXEL_MEAN}, std={inp.PIXEL_STD})")
        tfm.append(normalize)
    if "gaussian_noise" in choices:
        print(f"+ gaussian noise (mean={inp.GN_MEAN}, std={inp.GN_STD})")
        tfm.append(GaussianNoise(inp.GN_MEAN, inp.GN_STD))
    if "instance_norm" in choices:
        print("+ instance normalization")
        tfm.append(InstanceNormalization())
    return Compose(tfm)


def _build_test(cfg, choices, target_size, interp, normalize):
    print("Building transform_test")
    size = F.pair(cfg.INPUT.SIZE)
    print(f"+ resize the smaller edge to {max(size)}")
    tfm = [Resize(max(size), interpolation=interp)]
    print(f"+ {target_size} center crop")
    tfm.append(CenterCrop(size))
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
    """The un-augmented ``img0`` view of Dassl's DatasetWrapper: exact resize to INPUT.SIZE,
    to tensor, and normalise when "normalize" is in INPUT.TRANSFORMS."""
    _check_size(cfg.INPUT.SIZE)
    tfm = [Resize(tuple(cfg.INPUT.SIZE), interpolation=F.interpolation(cfg.INPUT.INTERPOLATION)), ToTensor()]
    if "normalize" in cfg.INPUT.TRANSFORMS:
        tfm.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
    return Compose(tfm)
