"""ImageNet-Sketch: 1,000 wnid folders of sketches (test only)."""
from engine.data.datasets import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetVariant):
    dataset_dir = "imagenet-sketch"
    image_folder = "images"
