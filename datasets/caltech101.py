"""Caltech101: 100 object classes (the two background/face-duplicate folders are ignored)."""
from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset

IGNORED = ["BACKGROUND_Google", "Faces_easy"]
NEW_CNAMES = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}


@DATASET_REGISTRY.register()
class Caltech101(SplitDataset):
    dataset_dir = "caltech-101"
    image_folder = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"

    def split_sources(self):
        return [self.image_dir]

    def generate_split(self):
        # the folder sort is case-sensitive: Faces, Leopards, Motorbikes get labels 0-2
        return splits.read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES)
