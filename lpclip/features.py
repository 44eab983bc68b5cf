"""Image features of the frozen CLIP image tower, extracted once and cached as .npz files.

The files hold ``feature_list`` [N, D] (float32, not normalised: CLIP's image tower output as
CoOp's feat_extractor.py saves it) and ``label_list`` [N], the keys of CoOp's lpclip, plus
``cache_key``: what the features were made from (engine/feature_cache.py's key: the weights
file's content, the images and labels, the test transform's settings, the encoder's precision,
the torch version). A file whose key differs from the current one, or that cannot be read, is
named and extracted again.
"""
import json
import os
import zipfile

import numpy as np
import torch
from tqdm import tqdm

from engine.data import DatasetWrapper
from engine.data.transforms import build_transform
from engine.feature_cache import cache_key, changed_entries
from engine.utils.tools import atomic_write


def backbone_tag(cfg):
    """A folder name for the backbone: the weights file's (or folder's) stem when MODEL.BACKBONE.PATH is
    set, else the name with its "/" and ":" replaced (openclip:ViT-B-16/laion2b_s34b_b88k)."""
    if cfg.MODEL.BACKBONE.PATH:
        return os.path.splitext(os.path.basename(os.path.normpath(cfg.MODEL.BACKBONE.PATH)))[0]
    return cfg.MODEL.BACKBONE.NAME.replace("/", "-").replace(":", "-")


@torch.no_grad()
def extract_features(cfg, image_encoder, items, device, desc):
    """([N, D] float32, [N] int64) for the data items, with the test transform (no augmentation)."""
    loader = torch.utils.data.DataLoader(
        DatasetWrapper(cfg, items, transform=build_transform(cfg, is_train=False), is_train=False),
        batch_size=cfg.DATALOADER.TEST.BATCH_SIZE,
        shuffle=False,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
    )
    dtype = image_encoder.conv1.weight.dtype
    features, labels = [], []
    for batch in tqdm(loader, desc=desc):
        features.append(image_encoder(batch["img"].to(device).type(dtype)).float().cpu())
        labels.append(batch["label"])
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def read_cached(path, key):
    """(features, labels) of a cache file made from ``key``, else None with one line saying why."""
    try:
        with np.load(path) as data:
            features, labels = data["feature_list"], data["label_list"]
            stored = json.loads(str(data["cache_key"])) if "cache_key" in data.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        print(f'The cached features "{path}" cannot be read ({type(e).__name__}: {e}): extracting them again')
        return None
    if stored != key:
        changed = changed_entries(stored, key)
        print(f'The cached features "{path}" were made from other inputs ({changed}): extracting them again')
        return None
    if len(features) != len(labels):
        print(f'The cached features "{path}" hold {len(features)} features for {len(labels)} labels: extracting them again')
        return None
    return features, labels


class FeatureCache:
    """Features of named splits under one folder; the image tower is built only when a file must be (re)made."""

    def __init__(self, folder, build_encoder, weights_file, precision):
        self.folder = folder
        self.build_encoder = build_encoder  # () -> (image encoder, device)
        self.weights_file = weights_file
        self.precision = precision
        self._encoder = None

    def get(self, cfg, name, items):
        """Features and labels of ``items``, read from ``<folder>/<name>.npz`` when it was made from the
        same inputs, else extracted and saved there."""
        path = os.path.join(self.folder, f"{name}.npz")
        key = cache_key(cfg, self.weights_file, items, self.precision)
        if key is not None and os.path.isfile(path):
            cached = read_cached(path, key)
            if cached is not None:
                print(f"Loaded cached features from {path}")
                return cached
        if self._encoder is None:
            self._encoder = self.build_encoder()
        encoder, device = self._encoder
        features, labels = extract_features(cfg, encoder, items, device, desc=f"Extracting {name} features")
        if key is None:
            print(f'The weights "{self.weights_file}" have no content fingerprint here: the features are not cached')
            return features, labels

        def write(tmp):
            with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
                np.savez(f, feature_list=features, label_list=labels, cache_key=json.dumps(key, sort_keys=True))

        atomic_write(path, write)  # an interrupted run leaves no half-written cache
        print(f"Saved {len(labels)} features to {path}")
        return features, labels
