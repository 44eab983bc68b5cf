"""Normalised CLIP embeddings of a whole retrieval set (its images or its captions), computed once
per (model, data) and kept on disk as safetensors.

A cache file is named by the sha256 of what the embeddings derive from: the model's weights (their
content hash, or the hub name; they also fix the image size), the side (image / text), the texts or
the images' paths and content, and the precision. A rerun, another direction or another method with
the same model reads the file instead of encoding the set again, without loading the model. Writes
are atomic (a temporary file renamed).
"""
import contextlib
import hashlib
import json
import os

import torch
from safetensors.torch import load_file, save_file

import clip
from engine.run_manifest import file_fingerprint, sha256_file

from .data import image_loader

FORMAT = 1
CACHE_ENV = "TEXTREFINER_FEATURE_CACHE"


def default_cache_dir():
    """$TEXTREFINER_FEATURE_CACHE, else ~/.cache/textrefiner/retrieval_features."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "textrefiner",
                                                     "retrieval_features")


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def tokenize(texts):
    """CLIP token ids [N, 77]; a caption over 76 tokens is cut and keeps its end token (the reference's
    tokenizer drops it, so every such caption pools at the start token and gets the same embedding)."""
    return clip.tokenize(texts, truncate=True)


def texts_digest(texts):
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def images_digest(paths, root):
    """sha256 over the images' paths (relative to ``root``) and contents."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{os.path.relpath(path, root)}\t{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def autocast(device, amp):
    return torch.autocast(device_type=device.type) if amp else contextlib.nullcontext()


@torch.no_grad()
def encode_texts(model, texts, device, amp, batch_size=128):
    """Captions -> normalised text embeddings [N, D] (float32)."""
    out = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenize(texts[start:start + batch_size]).to(device)
        with autocast(device, amp):
            out.append(unit(model.encode_text(tokens).float()))
    return torch.cat(out)


@torch.no_grad()
def encode_images(model, paths, device, amp, batch_size=64, workers=4):
    """Image files -> normalised image embeddings [N, D] (float32), at the model's input size."""
    out = []
    for images in image_loader(paths, model.visual.input_resolution, batch_size, workers):
        with autocast(device, amp):
            out.append(unit(model.encode_image(images.to(device)).float()))
    return torch.cat(out)


def data_digests(data):
    """{"text": sha256 of the cleaned captions, "image": of the images' paths and contents} of a RetrievalSet."""
    return {"text": texts_digest(data.texts), "image": images_digest(data.images, data.image_root)}


class FeatureCache:
    """Embeddings of a set's images and texts per model, read from / written to ``folder``;
    ``digests`` the set's data_digests."""

    def __init__(self, folder, data, digests, device, amp, workers=4, batch_size=128, log=print):
        self.folder = folder
        self.data = data
        self.digests = digests
        self.device = device
        self.amp = amp
        self.workers = workers
        self.batch_size = batch_size
        self.log = log
        self._fingerprints = {}

    def _model_id(self, weights):
        if weights not in self._fingerprints:
            # a file's or folder's content hash; a hub name (no local content) by its name
            self._fingerprints[weights] = file_fingerprint(weights)["sha256"] or weights
        return self._fingerprints[weights]

    def key(self, weights, side):
        what = {"format": FORMAT, "model": self._model_id(weights), "side": side, "data": self.digests[side],
                "amp": self.amp}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def path(self, weights, side):
        return os.path.join(self.folder, f"{side}_{self.key(weights, side)[:32]}.safetensors")

    def get(self, weights, side, load_model, label):
        """Embeddings [N, D] of the set's ``side`` ("image" / "text") under the CLIP of file ``weights``;
        ``load_model()`` gives that CLIP when they are not cached yet."""
        path = self.path(weights, side)
        if os.path.isfile(path):
            self.log(f"{label}: {side} embeddings of {self.data.name} read from {path}")
            return load_file(path)["features"].to(self.device)
        self.log(f"{label}: encoding the {len(getattr(self.data, side + 's'))} {side}s of {self.data.name}")
        model = load_model()
        if side == "text":
            features = encode_texts(model, self.data.texts, self.device, self.amp, self.batch_size)
        else:
            features = encode_images(model, self.data.images, self.device, self.amp, self.batch_size, self.workers)
        os.makedirs(self.folder, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            save_file({"features": features.cpu().contiguous()}, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return features
