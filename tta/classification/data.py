"""Test sets by the reference's ids (I, A, V, R, K and ten fine-grained sets) on our data sets,
and image folders of one's own (--image_folder).

The images and labels come from the project's data set classes (DATASET.ROOT layout of
docs/DATASETS.md, the CoOp test splits; an image folder's test split, docs/OWN_DATA.md); each
test image is turned into its views by a ViewBuilder in the loader's workers.
"""
import os

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

import datasets  # noqa: F401  (registers the data sets)
from datasets.base import dataset_folder, require_files
from datasets.imagenet import ImageNet, read_classnames
from engine.config import get_cfg_default
from engine.data.datasets import build_dataset
from engine.distributed import ShardedSampler
from engine.utils import read_image

# the reference's set id (lower case) -> registered data set; ImageNet ids are one letter
SET_IDS = {
    "i": "ImageNet",
    "a": "ImageNetA",
    "v": "ImageNetV2",
    "r": "ImageNetR",
    "k": "ImageNetSketch",
    "caltech101": "Caltech101",
    "cars": "StanfordCars",
    "pets": "OxfordPets",
    "flower102": "OxfordFlowers",
    "aircraft": "FGVCAircraft",
    "food101": "Food101",
    "sun397": "SUN397",
    "dtd": "DescribableTextures",
    "eurosat": "EuroSAT",
    "ucf101": "UCF101",
}
IMAGENET_SETS = ("ImageNet", "ImageNetA", "ImageNetV2", "ImageNetR", "ImageNetSketch")


def parse_test_sets(text, root=None, image_folders=()):
    """"A/V/R/K/I/DTD/Flower102" and image folders -> [(set id, registered data set name, data root)]:
    the ids as given (under ``root``), then one "ImageFolder" set per folder, its id the folder's name."""
    sets = []
    for set_id in filter(None, text.split("/")):
        name = SET_IDS.get(set_id.strip().lower())
        if name is None:
            known = ", ".join(["I", "A", "V", "R", "K"] + sorted(k for k in SET_IDS if len(k) > 1))
            raise ValueError(f'Unknown test set id "{set_id}" in --test_sets "{text}". Known ids: {known}.')
        sets.append((set_id.strip(), name, root))
    for folder in image_folders:
        set_id = os.path.basename(os.path.normpath(folder))
        if any(set_id == other for other, _, _ in sets):
            raise ValueError(f'Two test sets are named "{set_id}": give image folders with distinct names')
        sets.append((set_id, "ImageFolder", folder))
    if not sets:
        raise ValueError("No test set: give --test_sets ids or --image_folder folders")
    return sets


def is_fine_grained(name):
    """The reference applies AugMix to every set that is not an ImageNet variant."""
    return name not in IMAGENET_SETS


def load_test_set(name, root):
    """(test items, class names) of data set ``name`` under ``root`` (the CoOp test split)."""
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = root
    cfg.DATASET.NAME = name
    cfg.VERBOSE = False
    if name == "ImageNet":
        return imagenet_val(cfg)
    dataset = build_dataset(cfg)
    return dataset.test, dataset.classnames


def imagenet_val(cfg):
    """ImageNet's images/val/<wnid>/ alone: test-time adaptation needs no train folder."""
    folder = dataset_folder(cfg, ImageNet.dataset_dir, "ImageNet")
    text_file = os.path.join(folder, "classnames.txt")
    val_dir = os.path.join(folder, "images", "val")
    require_files([text_file, val_dir], "ImageNet (set I) needs images/val/<wnid>/ and classnames.txt")
    names = read_classnames(text_file)
    items = ImageNet.read_data(names, val_dir, text_file)
    folders = sorted(f.name for f in os.scandir(val_dir) if f.is_dir())
    return items, [names[f] for f in folders]


class ViewsDataset(Dataset):
    """Item i -> (views [N, 3, H, W] of test image i, label)."""

    def __init__(self, items, view_builder):
        self.items = items
        self.view_builder = view_builder

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        item = self.items[index]
        return self.view_builder(read_image(item.impath), index), item.label


def views_loader(items, view_builder, workers, seed, num_replicas=1, rank=0):
    """One image (all its views) per batch, in a seeded shuffled order as the reference.

    Under torchrun every rank draws the same order and takes every ``num_replicas``-th image of
    it, from position ``rank``: each image once over all ranks. Its views are seeded by its index
    (ViewBuilder), so its prediction does not depend on the rank that adapts to it.
    """
    generator = torch.Generator().manual_seed(seed)
    dataset = ViewsDataset(items, view_builder)
    order = RandomSampler(dataset, generator=generator)
    sampler = order if num_replicas == 1 else ShardedSampler(order, num_replicas, rank, from_rank0=False, even=False)
    # the loader shares the generator (its worker seed draw comes first, as with shuffle=True)
    return DataLoader(dataset, batch_size=1, sampler=sampler, generator=generator, num_workers=workers)
