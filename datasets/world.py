"""The generated world's data sets (written by ``python -m tools.world.data --root DATA``).

Split-file layout: <folder>/images/<class>/<image>.png and <folder>/split_<Name>.json. The
benchmark sets follow the CoOp protocol (few-shot train/val, base/new subsampling); the
shifted renderings of WorldObjects' classes are test-only like the ImageNet variants.
"""
import os

from engine.data.datasets import DATASET_REGISTRY, DatasetBase

from .base import SplitDataset, dataset_folder
from .splits import read_split

WRITE_HINT = "write the world's data sets with `python -m tools.world.data --root <DATASET.ROOT>`"


def _split_path(dataset_dir, name):
    path = os.path.join(dataset_dir, f"split_{name}.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{name}: the split file "{path}" is missing: {WRITE_HINT}.')
    return path


class WorldDataset(SplitDataset):
    """A world benchmark set; its split file is always written with the images."""

    image_folder = "images"

    def __init__(self, cfg):
        self.split_file = f"split_{type(self).__name__}.json"
        super().__init__(cfg)

    def load_split(self):
        return read_split(_split_path(self.dataset_dir, type(self).__name__), self.image_dir)


class WorldVariant(DatasetBase):
    """A test-only shifted rendering of WorldObjects' classes: train_x = test = all images, no val."""

    def __init__(self, cfg):
        name = type(self).__name__
        self.dataset_dir = dataset_folder(cfg, self.dataset_dir, name)
        _, _, test = read_split(_split_path(self.dataset_dir, name), os.path.join(self.dataset_dir, "images"))
        super().__init__(train_x=test, test=test)


@DATASET_REGISTRY.register()
class WorldObjects(WorldDataset):
    """Colour x shape (64 classes), photos: the world's ImageNet and cross-dataset source."""

    dataset_dir = "world_objects"


@DATASET_REGISTRY.register()
class WorldShapes(WorldDataset):
    """Shapes (8 classes), sketches."""

    dataset_dir = "world_shapes"


@DATASET_REGISTRY.register()
class WorldColors(WorldDataset):
    """Colours (8 classes, "red shape"), blurry photos."""

    dataset_dir = "world_colors"


@DATASET_REGISTRY.register()
class WorldPatterns(WorldDataset):
    """Pattern x shape (24 classes, "striped star"), cartoons."""

    dataset_dir = "world_patterns"


@DATASET_REGISTRY.register()
class WorldObjectsSketch(WorldVariant):
    dataset_dir = "world_objects_sketch"


@DATASET_REGISTRY.register()
class WorldObjectsCartoon(WorldVariant):
    dataset_dir = "world_objects_cartoon"


@DATASET_REGISTRY.register()
class WorldObjectsNoisy(WorldVariant):
    dataset_dir = "world_objects_noisy"
