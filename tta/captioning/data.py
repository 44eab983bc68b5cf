"""The caption data sets in the reference's JSON files (LAVIS / Karpathy splits, NoCaps converted).

Test sets (COCO Karpathy test, Flickr30k test, NoCaps val per domain): a JSON list of
``{"image": path under --images_root, "caption": [references], ...}``. COCO Karpathy train: one
entry per caption, ``{"image": ..., "caption": "...", "image_id": ...}``. NoCaps' own val file
(``nocaps_val_4500_captions.json``, COCO style with a "domain" per image) is split into in / near /
out-domain files by ``split_nocaps``, named as the reference's converter names them.
"""
import json
import os.path as osp
from dataclasses import dataclass

from PIL import Image

from engine.data.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor
from engine.utils.tools import write_json_atomic

# --dataset_mode of the reference, and the files its scripts give each mode
DATASET_MODES = {0: "COCO Karpathy test (coco_karpathy_test.json)", 1: "Flickr30k test (flickr30k_test.json)",
                 2: "NoCaps val of one domain (nocaps_val_<n>_<domain>.json, from split_nocaps)"}
NOCAPS_DOMAINS = ("in-domain", "near-domain", "out-domain")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class CaptionImage:
    path: str  # the image file
    key: str  # the image's name in result files (its file name, as the reference's clipscore files)
    references: list  # reference captions (empty for training entries)
    image_id: object = None


def _read_list(annotations, what):
    if not osp.isfile(annotations):
        raise FileNotFoundError(f'The annotation file "{annotations}" does not exist: give --annotations the {what} JSON')
    try:
        with open(annotations, encoding="utf-8") as f:
            data = json.load(f)
    except ValueError as e:
        raise ValueError(f'"{annotations}" is not valid JSON ({e}): give --annotations the {what} JSON') from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) and "image" in d and "caption" in d for d in data):
        raise ValueError(f'"{annotations}" is not a {what} file: it must be a non-empty JSON list of {{"image": ..., "caption": ...}}')
    return data


def _check_images(items, images_root, annotations):
    missing = [it.path for it in items if not osp.isfile(it.path)]
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} of the {len(items)} images of "{annotations}" are not under --images_root "{images_root}" '
            f'(the first: "{missing[0]}"): give --images_root the folder their "image" paths start from'
        )
    return items


def read_test_set(annotations, images_root):
    """The images of a caption test file with their references, checked."""
    items = []
    for entry in _read_list(annotations, "caption test set (e.g. " + DATASET_MODES[0] + ")"):
        refs = entry["caption"]
        if isinstance(refs, str):
            refs = [refs]
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f'"{annotations}": the references of "{entry["image"]}" must be a list of strings')
        items.append(CaptionImage(osp.join(images_root, entry["image"]), osp.basename(entry["image"]), list(refs), entry.get("image_id")))
    return _check_images(items, images_root, annotations)


def read_train_set(annotations, images_root):
    """(images, captions, image index of each caption) of COCO Karpathy train (one entry per caption), checked."""
    images, index, captions = [], [], []
    position = {}
    for entry in _read_list(annotations, "caption training set (coco_karpathy_train.json)"):
        if not isinstance(entry["caption"], str):
            raise ValueError(f'"{annotations}": a training entry has one caption string, "{entry["image"]}" has {type(entry["caption"]).__name__}')
        if entry["image"] not in position:
            position[entry["image"]] = len(images)
            images.append(CaptionImage(osp.join(images_root, entry["image"]), entry["image"], [], entry.get("image_id")))
        index.append(position[entry["image"]])
        captions.append(entry["caption"])
    return _check_images(images, images_root, annotations), captions, index


def clip_transform(resolution):
    """CLIP's test preprocessing: bicubic resize of the short side, centre crop, CLIP normalisation."""
    return Compose([Resize(resolution, interpolation=Image.Resampling.BICUBIC), CenterCrop(resolution), ToTensor(),
                    Normalize(CLIP_MEAN, CLIP_STD)])


def load_image(path, transform):
    """[1, 3, R, R]"""
    with Image.open(path) as img:
        return transform(img.convert("RGB")).unsqueeze(0)


def split_nocaps(annotations):
    """Write nocaps_val_<n>_<domain>.json (the test-set format) and nocaps_val_<n>_<domain>_clipscore.json
    ({file name: references}) beside NoCaps' nocaps_val_4500_captions.json; returns the test-set paths."""
    if not osp.isfile(annotations):
        raise FileNotFoundError(f'"{annotations}" does not exist: download nocaps_val_4500_captions.json from nocaps.org')
    with open(annotations, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f'"{annotations}" is not NoCaps\' val annotation file (COCO style, with "images" and "annotations")')
    refs = {}
    for a in data["annotations"]:
        refs.setdefault(a["image_id"], []).append(a["caption"])
    by_domain = {d: [] for d in NOCAPS_DOMAINS}
    for image in data["images"]:
        if image.get("domain") not in by_domain:
            raise ValueError(f'"{annotations}": image {image.get("id")} has domain {image.get("domain")!r}, not one of {NOCAPS_DOMAINS}')
        by_domain[image["domain"]].append({"image": image["file_name"], "caption": refs.get(image["id"], []), "image_id": image["id"]})
    folder, written = osp.dirname(annotations), []
    for domain, entries in by_domain.items():
        stem = osp.join(folder, f"nocaps_val_{len(entries)}_{domain}")
        write_json_atomic(entries, stem + ".json")
        write_json_atomic({e["image"]: e["caption"] for e in entries}, stem + "_clipscore.json")
        written.append(stem + ".json")
    return written
