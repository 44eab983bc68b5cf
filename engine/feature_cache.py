"""Image features that depend on no learned parameter, computed once and kept on disk.

A frozen, unprompted CLIP image tower gives every test image the same feature whatever the
seed, the method or the epoch. A cache entry is keyed by everything the feature is made from
(``cache_key``): the weights file's content, the image list (paths, labels, class names) and the
image files' sizes and modification times, the test transform's settings, the precision, the torch
version, plus what a user adds (the data set, the split, the device, the batch size). A stored key
that differs from the current one, or a file that cannot be read, is named in one line and the
features are made again. Two stores share the key: lpclip's .npz files (CoOp's feature_list /
label_list format) and the evaluation cache here, one safetensors file per key (docs/ENGINE_CACHE.md).

The hand-made template text features (zero-shot weights, KgCoOp's anchors, TaskRes's base,
PromptSRC's frozen text) are kept the same way (``cached_text_features``), keyed by the weights
file's content, the exact prompt strings, the text tower's dtype and device and the torch version.
"""
import hashlib
import json
import os

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from engine import distributed
from engine.run_manifest import file_fingerprint, items_digest
from engine.utils.tools import atomic_write

# the INPUT keys the test transform reads
TRANSFORM_KEYS = ("SIZE", "INTERPOLATION", "TRANSFORMS", "NO_TRANSFORM", "PIXEL_MEAN", "PIXEL_STD")


def default_folder():
    """$TEXTREFINER_FEATURE_CACHE, else ~/.cache/textrefiner/features."""
    return os.environ.get("TEXTREFINER_FEATURE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "textrefiner", "features")


def files_digest(items):
    """sha256 over the image files' sizes and modification times (an edited image changes it)."""
    digest = hashlib.sha256()
    for item in items:
        stat = os.stat(item.impath)
        digest.update(f"{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def weights_digest(weights_file, digests):
    """sha256 of the weights' content, kept in ``digests`` {file: sha256}; None for a hub name or no file."""
    if weights_file and weights_file not in digests:
        digests[weights_file] = file_fingerprint(weights_file)["sha256"]
    return digests.get(weights_file)


def cache_key(cfg, weights_file, items, precision, digests=None, **extra):
    """What features are made from, as a dict of short strings (compared entry by entry);
    None when the weights have no content here (a hub name): nothing is cached then.
    ``digests`` {file: sha256} keeps the weights' hash between calls (one run hashes once)."""
    weights = weights_digest(weights_file, {} if digests is None else digests)
    if weights is None:
        return None
    transform = {k: cfg.INPUT[k] for k in TRANSFORM_KEYS}
    key = {
        "weights": weights,
        "images": f"{len(items)} images, {items_digest(items, cfg.DATASET.ROOT)}",
        "image_files": files_digest(items),
        "transform": json.dumps(transform, sort_keys=True, default=list),
        "precision": str(precision),
        "torch": torch.__version__,
    }
    key.update({name: str(value) for name, value in extra.items()})
    return key


def changed_entries(stored, key):
    """The names of the key entries that differ, as one phrase for a log line."""
    if stored is None:
        return "no record of its inputs"
    return ", ".join(k for k in key if stored.get(k) != key[k]) or "entries it does not have"


def key_digest(key):
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def atomic_save(path, tensors, metadata):
    """safetensors file written beside ``path`` and renamed onto it: readers never see half a file."""
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


class EvalFeatureCache:
    """Features of one key (test-time image features [N, D] of one split, or the text features of
    a prompt list), in ``<folder>/<name>-<digest>.safetensors``.

    ``read()`` gives the stored features or None (one line saying why when a file was there);
    ``write(features)`` stores them. The digest is the key's, so runs that differ in any entry
    use different files; the key is also stored and compared on reading. ``what`` names them in the log.
    """

    def __init__(self, folder, name, key, what="image features"):
        self.key = key
        self.what = what
        self.path = os.path.join(os.path.expanduser(folder), f"{name}-{key_digest(key)[:16]}.safetensors")

    def read(self):
        if not os.path.isfile(self.path):
            return None
        try:
            with safe_open(self.path, "pt") as f:
                stored = json.loads(f.metadata()["key"])
                features = f.get_tensor("features")
        except (OSError, SafetensorError, KeyError, ValueError, TypeError) as e:
            print(f'The cached features "{self.path}" cannot be read ({type(e).__name__}: {e}): computing them again')
            return None
        if stored != self.key:
            print(f'The cached features "{self.path}" were made from other inputs '
                  f"({changed_entries(stored, self.key)}): computing them again")
            return None
        return features

    def write(self, features):
        atomic_save(self.path, {"features": features.contiguous()}, {"key": json.dumps(self.key, sort_keys=True)})
        print(f"Saved {len(features)} {self.what} to {self.path}")


def tensors_digest(tensors):
    """sha256 over tensors' bytes (a ResNet tower's BatchNorm statistics change in train mode)."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def device_name(device):
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return device.type


def evaluation_feature_cache(trainer, split, data_loader, digests=None):
    """The EvalFeatureCache of ``split`` for ``trainer``, or None where features are computed per
    batch: TEST.FEATURE_CACHE off, a trainer whose image features depend on what it learns, several
    processes (their shards), a loader that is not sequential (its order is the cache's), or weights
    without a content fingerprint here (a hub name). ``digests``: see cache_key."""
    cfg = trainer.cfg
    tower = trainer.frozen_image_tower()
    if not cfg.TEST.FEATURE_CACHE or tower is None or distributed.is_distributed():
        return None
    if not isinstance(data_loader.sampler, torch.utils.data.SequentialSampler):
        return None
    weights_file = trainer.weights_files(cfg).get("MODEL.BACKBONE")
    items = data_loader.dataset.data_source
    key = cache_key(
        cfg, weights_file, items, next(tower.parameters()).dtype, digests,
        features="normalised CLIP image tower output",
        tower_buffers=tensors_digest(tower.buffers()),
        dataset=cfg.DATASET.NAME, split=split, batch_size=data_loader.batch_size,
        device=device_name(trainer.device), compile=cfg.MODEL.BACKBONE.COMPILE,
    )
    if key is None:
        print(f'TEST.FEATURE_CACHE: the weights "{weights_file}" have no content fingerprint here: image features are computed')
        return None
    folder = cfg.TEST.FEATURE_CACHE_DIR or default_folder()
    return EvalFeatureCache(folder, f"{cfg.DATASET.NAME}-{split}", key)


def draw_as_iterating(data_loader):
    """Leave the global RNG where iterating ``data_loader`` leaves it: a DataLoader's iterator draws
    its workers' base seed (one int64, with the loader's generator) when it starts, and the
    sequential test sampler draws nothing. Without this, reading cached features instead of
    iterating would change the data order and augmentation of every epoch after a validation."""
    torch.empty((), dtype=torch.int64).random_(generator=data_loader.generator)


def cached_outputs(trainer, cache, data_loader):
    """(logits, labels) per batch of ``data_loader``, as ``trainer.batch_outputs`` gives them:
    from the cached image features when they are there (in the loader's batches, so every
    product has the shapes it has without the cache), else computed and then stored."""
    features = cache.read()
    if features is not None and len(features) != len(data_loader.dataset):
        print(f'The cached features "{cache.path}" hold {len(features)} features for {len(data_loader.dataset)} '
              "images: computing them again")
        features = None
    if features is not None:
        print(f"Loaded {len(features)} cached image features from {cache.path}")
        draw_as_iterating(data_loader)
        labels = torch.tensor([item.label for item in data_loader.dataset.data_source])
        size = data_loader.batch_size
        for start in range(0, len(features), size):
            chunk = features[start:start + size].to(trainer.device)  # [B, D]
            yield trainer.logits_from_features(chunk), labels[start:start + size].to(trainer.device)
        return
    computed = []
    for batch in tqdm(data_loader):
        image, label = trainer.parse_batch_test(batch)
        chunk = trainer.image_features(image)  # [B, D], normalised
        computed.append(chunk.cpu())
        yield trainer.logits_from_features(chunk), label
    try:
        cache.write(torch.cat(computed))
    except OSError as e:
        print(f'TEST.FEATURE_CACHE: cannot write "{cache.path}" ({e}): set TEST.FEATURE_CACHE_DIR to a writable folder')


def prompts_entry(prompts):
    """The key entry of the exact prompt strings (nested lists keep their grouping, e.g. class x template)."""
    text = json.dumps(prompts, ensure_ascii=False)
    count = len(prompts)
    return f"{count} rows, {hashlib.sha256(text.encode()).hexdigest()}"


def text_tower_precision(clip_model):
    """The text tower's weight dtype and the dtype encode_text computes in (CLIP casts to clip_model.dtype)."""
    return f"weights {clip_model.token_embedding.weight.dtype}, computes in {clip_model.dtype}"


def text_feature_cache(trainer, clip_model, name, prompts):
    """The EvalFeatureCache of the text features ``name`` of ``prompts`` made by ``clip_model``, or None
    where they are computed: TEST.FEATURE_CACHE off, or weights without a content fingerprint here."""
    cfg = trainer.cfg
    if not cfg.TEST.FEATURE_CACHE:
        return None
    weights_file = trainer.weights_files(cfg).get("MODEL.BACKBONE")
    weights = weights_digest(weights_file, trainer.weights_digests)
    if weights is None:
        print(f'TEST.FEATURE_CACHE: the weights "{weights_file}" have no content fingerprint here: text features are computed')
        return None
    key = {
        "features": name,
        "weights": weights,
        "prompts": prompts_entry(prompts),
        "precision": text_tower_precision(clip_model),
        "device": device_name(clip_model.token_embedding.weight.device),
        "torch": torch.__version__,
    }
    folder = cfg.TEST.FEATURE_CACHE_DIR or default_folder()
    return EvalFeatureCache(folder, f"{cfg.DATASET.NAME}-text-{name}", key, what="text feature rows")


def cached_text_features(trainer, clip_model, name, prompts, compute):
    """``compute()`` (the text features of ``prompts`` by ``clip_model``), read from the cache when a file
    of the same key is there, else computed and stored. ``name`` names the computation (one per
    function: it is part of the key, so two computations never share a file); ``prompts`` are the
    exact strings it encodes, in order (nested lists for grouped ones)."""
    cache = text_feature_cache(trainer, clip_model, name, prompts)
    if cache is None:
        return compute()
    features = cache.read()
    if features is not None:
        print(f"Loaded cached text features {list(features.shape)} from {cache.path}")
        return features.to(clip_model.token_embedding.weight.device)
    features = compute()
    try:
        cache.write(features.detach().cpu())
    except OSError as e:
        print(f'TEST.FEATURE_CACHE: cannot write "{cache.path}" ({e}): set TEST.FEATURE_CACHE_DIR to a writable folder')
    return features
