"""ImageNet-R: 200 wnid folders of renditions (test only).

Labels are 0..199 within the subset (sorted wnids), so the classifier is 200-way.
"""
from engine.data.datasets import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetR(ImageNetVariant):
    dataset_dir = "imagenet-rendition"
    image_folder = "imagenet-r"
    ignored = ("README.txt",)
