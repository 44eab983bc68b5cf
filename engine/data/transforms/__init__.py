"""Image transforms on PIL + torch with torchvision's semantics, and Dassl's build_transform.

``from dassl.data.transforms import build_transform`` ports as
``from engine.data.transforms import build_transform``.
"""
from .build import SUPPORTED_TRANSFORMS, build_img0_transform, build_transform
from .dassl_ops import Cutout, GaussianNoise, InstanceNormalization, Random2DTranslation
from .functional import INTERPOLATION_MODES
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

__all__ = [
    "INTERPOLATION_MODES",
    "SUPPORTED_TRANSFORMS",
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Cutout",
    "GaussianBlur",
    "GaussianNoise",
    "InstanceNormalization",
    "Normalize",
    "Random2DTranslation",
    "RandomApply",
    "RandomCrop",
    "RandomGrayscale",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "Resize",
    "ToTensor",
    "build_img0_transform",
    "build_transform",
]
