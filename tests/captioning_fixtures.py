"""Fixtures of the captioning tests: a tiny OPT folder and tiny captioners on it."""
import pytest
import torch

from tools.tiny_opt import save_tiny_opt
from tta.captioning.model import Captioner, load_language_model

CLIP_DIM = 16
SIZES = dict(clip_dim=CLIP_DIM, prefix_length=4, clip_length=4, layers=2, heads=2)


@pytest.fixture(scope="session")
def tiny_opt_folder(tmp_path_factory):
    return save_tiny_opt(tmp_path_factory.mktemp("opt") / "tiny-opt")


def tiny_captioner(folder, seed=0):
    """A captioner (mapper seeded with ``seed``) on the tiny OPT in ``folder``; returns (captioner, tokenizer)."""
    llm, tokenizer = load_language_model(folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        captioner = Captioner(llm, **SIZES)
    return captioner.eval(), tokenizer


def _image(path, seed):
    import os

    import numpy as np
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_caption_layouts(root, n_train=8, n_test=3):
    """Miniature COCO Karpathy (train, test), Flickr30k test and NoCaps val in the reference's layouts under ``root``."""
    import json
    import os

    import numpy as np

    from tools.world.captions import caption, random_attributes

    rng = np.random.default_rng(0)
    words = lambda: caption(random_attributes(rng), rng)  # noqa: E731
    coco = os.path.join(root, "coco2014")
    train = []
    for i in range(n_train):
        name = f"train2014/COCO_train2014_{i:012d}.jpg"
        _image(os.path.join(coco, name), i)
        train += [{"image": name, "caption": words(), "image_id": f"coco_{i}"} for _ in range(2)]
    test = []
    for i in range(n_test):
        name = f"val2014/COCO_val2014_{100 + i:012d}.jpg"
        _image(os.path.join(coco, name), 100 + i)
        test.append({"image": name, "caption": [words() for _ in range(5)]})
    json.dump(train, open(os.path.join(coco, "coco_karpathy_train.json"), "w"))
    json.dump(test, open(os.path.join(coco, "coco_karpathy_test.json"), "w"))
    flickr = os.path.join(root, "flickr30k")
    entries = []
    for i in range(n_test):
        name = f"flickr30k-images/{1000 + i}.jpg"
        _image(os.path.join(flickr, name), 1000 + i)
        entries.append({"image": name, "caption": [words() for _ in range(5)]})
    os.makedirs(os.path.join(flickr, "annotations"))
    json.dump(entries, open(os.path.join(flickr, "annotations", "flickr30k_test.json"), "w"))
    nocaps = os.path.join(root, "nocaps")
    images, annotations = [], []
    for i, domain in enumerate(["in-domain", "near-domain", "near-domain", "out-domain"]):
        name = f"{i:016x}.jpg"
        _image(os.path.join(nocaps, "val", name), 2000 + i)
        images.append({"id": i, "file_name": name, "domain": domain})
        annotations += [{"image_id": i, "id": 10 * i + j, "caption": words()} for j in range(4)]
    json.dump({"images": images, "annotations": annotations}, open(os.path.join(nocaps, "nocaps_val_4500_captions.json"), "w"))
    return str(root)
