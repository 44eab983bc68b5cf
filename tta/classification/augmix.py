"""AugMix's nine PIL operations (severity 1 in TPT) and the AugMix mixture of one view.

Each op takes (image, level, rng, size): ``rng`` is a numpy RandomState (the per-image RNG
of the view builder), ``size`` the square output size of the affine ops (the crop size).
The draws per op are AugMix's: a level uniform in [0.1, level], then a sign where the op
has one.
"""
import numpy as np
from PIL import Image, ImageOps


def _level(rng, level):
    return rng.uniform(low=0.1, high=level)


def _int_level(rng, level, maxval):
    return int(_level(rng, level) * maxval / 10)


def _float_level(rng, level, maxval):
    return float(_level(rng, level)) * maxval / 10.0


def _signed(rng, value):
    return -value if rng.uniform() > 0.5 else value


def autocontrast(img, level, rng, size):
    return ImageOps.autocontrast(img)


def equalize(img, level, rng, size):
    return ImageOps.equalize(img)


def posterize(img, level, rng, size):
    return ImageOps.posterize(img, 4 - _int_level(rng, level, 4))


def rotate(img, level, rng, size):
    degrees = _signed(rng, _int_level(rng, level, 30))
    return img.rotate(degrees, resample=Image.Resampling.BILINEAR)


def solarize(img, level, rng, size):
    return ImageOps.solarize(img, 256 - _int_level(rng, level, 256))


def _affine(img, size, coeffs):
    return img.transform((size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)


def shear_x(img, level, rng, size):
    return _affine(img, size, (1, _signed(rng, _float_level(rng, level, 0.3)), 0, 0, 1, 0))


def shear_y(img, level, rng, size):
    return _affine(img, size, (1, 0, 0, _signed(rng, _float_level(rng, level, 0.3)), 1, 0))


def translate_x(img, level, rng, size):
    return _affine(img, size, (1, 0, _signed(rng, _int_level(rng, level, size / 3)), 0, 1, 0))


def translate_y(img, level, rng, size):
    return _affine(img, size, (1, 0, 0, 0, 1, _signed(rng, _int_level(rng, level, size / 3))))


# TPT's list (AugMix without the ops that overlap ImageNet-C's corruptions)
AUGMENTATIONS = (autocontrast, equalize, posterize, rotate, solarize, shear_x, shear_y, translate_x, translate_y)


def augmix(crop, preprocess, rng, size, severity=1, ops=AUGMENTATIONS):
    """m * preprocess(crop) + (1 - m) * sum_i w_i * preprocess(chain_i(crop)), 3 chains of 1-3 ops.

    w ~ Dirichlet(1, 1, 1), m ~ Beta(1, 1), both float32 as in AugMix. ``preprocess`` maps a
    PIL image to a float32 array [3, size, size].
    """
    x = preprocess(crop)
    w = np.float32(rng.dirichlet([1.0, 1.0, 1.0]))
    m = np.float32(rng.beta(1.0, 1.0))
    mix = np.zeros_like(x)
    for i in range(3):
        aug = crop.copy()
        for _ in range(rng.randint(1, 4)):
            aug = ops[rng.randint(len(ops))](aug, severity, rng, size)
        mix += w[i] * preprocess(aug)
    return m * x + (np.float32(1) - m) * mix

