"""EuroSAT (RGB): 10 land-use classes, split 50/20/30 per class, with descriptive names."""
from engine.data.datasets import DATASET_REGISTRY

from . import splits
from .base import SplitDataset

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitDataset):
    dataset_dir = "eurosat"
    image_folder = "2750"
    split_file = "split_zhou_EuroSAT.json"

    def split_sources(self):
        return [self.image_dir]

    def generate_split(self):
        return splits.read_and_split_data(self.image_dir, new_cnames=NEW_CNAMES)
