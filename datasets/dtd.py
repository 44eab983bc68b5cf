"""Describable Textures (DTD): 47 textures, split 50/20/30 per class."""
from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset


@DATASET_REGISTRY.register()
class DescribableTextures(SplitDataset):
    dataset_dir = "dtd"
    image_folder = "images"
    split_file = "split_zhou_DescribableTextures.json"

    # the reference exposes the folder splitter here; other data sets call DTD.read_and_split_data
    read_and_split_data = staticmethod(splits.read_and_split_data)

    def split_sources(self):
        return [self.image_dir]

    def generate_split(self):
        return splits.read_and_split_data(self.image_dir)
