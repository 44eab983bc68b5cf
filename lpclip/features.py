"""Image features of the frozen CLIP image tower, extracted once and cached as .npz files.

The files hold ``feature_list`` [N, D] (float32, not normalised: CLIP's image tower output as
CoOp's feat_extractor.py saves it) and ``label_list`` [N], the keys of CoOp's lpclip.
"""
import os

import numpy as np
import torch
from tqdm import tqdm

from engine.data import DatasetWrapper
from engine.data.transforms import build_transform


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


class FeatureCache:
    """Features of named splits under one folder; the image tower is built only when a file is missing."""

    def __init__(self, folder, build_encoder):
        self.folder = folder
        self.build_encoder = build_encoder  # () -> (image encoder, device)
        self._encoder = None

    def get(self, cfg, name, items):
        """Features and labels of ``items``, read from ``<folder>/<name>.npz`` or extracted and saved there."""
        path = os.path.join(self.folder, f"{name}.npz")
        if os.path.isfile(path):
            print(f"Loaded cached features from {path}")
            data = np.load(path)
            return data["feature_list"], data["label_list"]
        if self._encoder is None:
            self._encoder = self.build_encoder()
        encoder, device = self._encoder
        features, labels = extract_features(cfg, encoder, items, device, desc=f"Extracting {name} features")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path[:-len('.npz')]}.tmp{os.getpid()}.npz"
        np.savez(tmp, feature_list=features, label_list=labels)
        os.replace(tmp, path)  # an interrupted run leaves no half-written cache
        print(f"Saved {len(labels)} features to {path}")
        return features, labels
