"""Image-text retrieval test sets in LAVIS's annotation format, and the CLIP eval transform.

An annotation file is a JSON list with one entry per image::

    [{"image": "val2014/COCO_val2014_000000391895.jpg", "caption": ["A man ...", ...]}, ...]

The image paths are relative to the set's image root. Every caption becomes one gallery text, in
file order; ``txt2img[t]`` is the image of text t and ``img2txt[i]`` the texts of image i (the ids
of LAVIS's RetrievalEvalDataset). Captions are cleaned as LAVIS's ``blip_caption`` processor:
lower case, the characters . ! " ( ) * # : ; ~ replaced by spaces, runs of spaces squeezed, at
most 50 words.

Set layouts under --root (those of the reference's LAVIS configs), or --ann_file / --image_root:

    coco       coco2014/coco_karpathy_test.json          images under coco2014/ (val2014/...)
    flickr30k  flickr30k/annotations/flickr30k_test.json images under flickr30k/ (flickr30k-images/...)
    world      world_retrieval/world_retrieval_test.json images under world_retrieval/ (python -m tools.world.retrieval)
"""
import json
import os
import re
from dataclasses import dataclass

from torch.utils.data import DataLoader, Dataset

from engine.data.transforms import CenterCrop, Compose, Normalize, Resize, ToTensor
from engine.utils import read_image
from tta.classification.views import CLIP_MEAN, CLIP_STD

MAX_WORDS = 50
# set name -> (annotation file, image root), relative to --root; and where the files come from
SETS = {
    "coco": ("coco2014/coco_karpathy_test.json", "coco2014"),
    "flickr30k": ("flickr30k/annotations/flickr30k_test.json", "flickr30k"),
    "world": ("world_retrieval/world_retrieval_test.json", "world_retrieval"),
}
SOURCES = {
    "coco": "the annotation file is in RLCF's release annotations.zip (LAVIS's coco_karpathy_test.json); the "
            "images are COCO 2014's val2014 folder",
    "flickr30k": "the annotation file is in RLCF's release annotations.zip (LAVIS's flickr30k_test.json); the "
                 "images are Flickr30k's flickr30k-images folder",
    "world": "python -m tools.world.retrieval --root DATA writes it",
}
_PUNCTUATION = re.compile(r'[.!"()*#:;~]')
_SPACES = re.compile(r"\s{2,}")


def clean_caption(text, max_words=MAX_WORDS):
    """A caption as LAVIS's blip_caption processor makes it (see the module docstring)."""
    text = _SPACES.sub(" ", _PUNCTUATION.sub(" ", text.lower())).rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


@dataclass
class RetrievalSet:
    """A test set: image files, cleaned captions and the ids that match them."""

    name: str
    ann_file: str
    image_root: str
    images: list  # [N_img] absolute image paths
    texts: list  # [N_txt] cleaned captions
    txt2img: list  # [N_txt] image id of each text
    img2txt: list  # [N_img] text ids of each image


def set_files(name, root=None, ann_file=None, image_root=None):
    """(annotation file, image root) of set ``name``: given ones, else its layout under ``root``."""
    if name not in SETS:
        raise ValueError(f'Unknown retrieval set "{name}": one of {", ".join(SETS)}')
    default_ann, default_images = SETS[name]
    if (ann_file is None or image_root is None) and root is None:
        raise ValueError(f"give the data root (--root DATA) or both --ann_file and --image_root for the {name} set")
    ann_file = ann_file or os.path.join(root, default_ann)
    image_root = image_root or os.path.join(root, default_images)
    return ann_file, image_root


def _missing(name, what, path, flag):
    return FileNotFoundError(
        f'The {name} retrieval set\'s {what} "{path}" does not exist ({SOURCES[name]}): put it there, or name it '
        f"with {flag}"
    )


def load_retrieval_set(name, root=None, ann_file=None, image_root=None):
    """The RetrievalSet of ``name`` (see the module docstring), every file checked before any is read."""
    ann_file, image_root = set_files(name, root, ann_file, image_root)
    if not os.path.isfile(ann_file):
        raise _missing(name, "annotation file", ann_file, "--ann_file")
    if not os.path.isdir(image_root):
        raise _missing(name, "image folder", image_root, "--image_root")
    with open(ann_file, encoding="utf-8") as f:
        try:
            entries = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'The annotation file "{ann_file}" is not valid JSON ({e}): replace it with the released one') from None
    images, texts, txt2img, img2txt = [], [], [], []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or not isinstance(entry.get("caption"), list):
            raise ValueError(f'Entry {i} of "{ann_file}" is not {{"image": path, "caption": [texts]}}: it is not a '
                             "LAVIS retrieval annotation file")
        path = os.path.join(image_root, entry["image"])
        if not os.path.isfile(path):
            raise _missing(name, f"image {i}", path, "--image_root")
        images.append(os.path.abspath(path))
        img2txt.append([])
        for caption in entry["caption"]:
            img2txt[-1].append(len(texts))
            texts.append(clean_caption(caption))
            txt2img.append(i)
    if not texts:
        raise ValueError(f'The annotation file "{ann_file}" lists no captions')
    return RetrievalSet(name, os.path.abspath(ann_file), os.path.abspath(image_root), images, texts, txt2img, img2txt)


def eval_transform(size):
    """CLIP's eval transform: shorter edge to ``size`` (bicubic), centre crop, CLIP mean / std."""
    return Compose([Resize(size, interpolation="bicubic"), CenterCrop(size), ToTensor(), Normalize(CLIP_MEAN, CLIP_STD)])


class ImageDataset(Dataset):
    """Image i -> its eval tensor [3, size, size]."""

    def __init__(self, paths, size):
        self.paths = paths
        self.transform = eval_transform(size)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return self.transform(read_image(self.paths[index]))


def image_loader(paths, size, batch_size, workers):
    """The images in order, ``batch_size`` at a time (1 per query while adapting)."""
    return DataLoader(ImageDataset(paths, size), batch_size=batch_size, shuffle=False, num_workers=workers)
