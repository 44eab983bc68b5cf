"""ImageNet-A: 200 wnid folders of adversarially filtered images (test only).

Labels are 0..199 within the subset (sorted wnids), so the classifier is 200-way.
"""
from engine.data.datasets import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetA(ImageNetVariant):
    dataset_dir = "imagenet-adversarial"
    image_folder = "imagenet-a"
    ignored = ("README.txt",)
