from .functional import INTERPOLATION_MODES
from .transforms import (
    SUPPORTED_TRANSFORMS,
    CenterCrop,
    Compose,
    Cutout,
    GaussianNoise,
    InstanceNormalization,
    Normalize,
    Random2DTranslation,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
    build_img0_transform,
    build_transform,
)
