"""FGVC-Aircraft: 100 variants with the official train/val/test lists (no split JSON)."""
import os

from engine.data.datasets import DATASET_REGISTRY

from .base import SplitDataset, require_files
from .splits import make_datum

SPLIT_FILES = ("images_variant_train.txt", "images_variant_val.txt", "images_variant_test.txt")


@DATASET_REGISTRY.register()
class FGVCAircraft(SplitDataset):
    dataset_dir = "fgvc_aircraft"
    image_folder = "images"

    def load_split(self):
        """Labels are line indices of variants.txt; lines of the split lists are
        "<image id> <variant name, may contain spaces>"."""
        sources = [os.path.join(self.dataset_dir, f) for f in ("variants.txt",) + SPLIT_FILES]
        require_files(
            [self.image_dir] + sources,
            "FGVCAircraft needs the official files of fgvc-aircraft-2013b.tar.gz (its data/ folder, "
            "renamed to fgvc_aircraft/)",
        )
        with open(sources[0], "r") as f:
            cname2lab = {line.strip(): i for i, line in enumerate(f)}
        return tuple(self.read_data(cname2lab, split_file) for split_file in SPLIT_FILES)

    def read_data(self, cname2lab, split_file):
        filepath = os.path.join(self.dataset_dir, split_file)
        items = []
        with open(filepath, "r") as f:
            for line in f:
                imname, *words = line.strip().split(" ")
                classname = " ".join(words)
                impath = os.path.join(self.image_dir, imname + ".jpg")
                items.append(make_datum(impath, cname2lab[classname], classname, filepath))
        return items
