"""Small file-system, seeding and lookup helpers with Dassl's names and behaviour."""
import difflib
import functools
import errno
import json
import os
import os.path as osp
import random
import warnings

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError


def mkdir_if_missing(dirname):
    """Create ``dirname`` (and parents) unless it exists."""
    if not osp.exists(dirname):
        try:
            os.makedirs(dirname)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise


def check_isfile(fpath):
    """True if ``fpath`` is a file; warns otherwise."""
    isfile = osp.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"')
    return isfile


def read_json(fpath):
    with open(fpath, "r") as f:
        return json.load(f)


def write_json(obj, fpath):
    mkdir_if_missing(osp.dirname(fpath) or ".")
    with open(fpath, "w") as f:
        json.dump(obj, f, indent=4, separators=(",", ": "))


def atomic_write(fpath, write):
    """``write(tmp)`` to a temporary name next to ``fpath``, then rename it onto ``fpath``: a reader never
    sees half a file, and a failed or interrupted write leaves no temporary file behind."""
    mkdir_if_missing(osp.dirname(fpath) or ".")
    tmp = f"{fpath}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, fpath)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def write_text_atomic(fpath, text):
    """Write ``text`` (UTF-8) through :func:`atomic_write`."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(fpath, write)


def write_json_atomic(obj, fpath, indent=4, trailing_newline=False):
    """Write ``obj`` as JSON through :func:`atomic_write`."""
    write_text_atomic(fpath, json.dumps(obj, indent=indent) + ("\n" if trailing_newline else ""))


def set_random_seed(seed):
    """Seed Python, NumPy and torch (all devices) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def read_image(path):
    """Open an image as RGB, with an error that names the file when it is unreadable."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'Image not found: "{path}". Check DATASET.ROOT and the data set folder.')
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise RuntimeError(
            f'Cannot read image "{path}" ({e.__class__.__name__}: {e}). '
            "The file is corrupt or not an image: replace it with a valid copy from the data set's source."
        ) from e


def listdir_nohidden(path, sort=False):
    """Names in ``path`` that do not start with '.' (sorted only on request, as Dassl)."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    if sort:
        items.sort()
    return items


def tolist_if_not(x):
    if not isinstance(x, list):
        x = [x]
    return x


def check_availability(requested, available):
    """Raise a ValueError with a close-match suggestion if ``requested`` is not available."""
    if requested not in available:
        # a name differing only in case first ("Coop" -> CoOp, not the closer-spelled CoCoOp)
        same = [name for name in available if name.lower() == requested.lower()]
        match = same or difflib.get_close_matches(requested, available, n=1, cutoff=0.0)
        hint = f" (do you mean [{match[0]}]?)" if match else ""
        raise ValueError(
            f"The requested one is expected to belong to {available}, but got [{requested}]{hint}"
        )


@functools.lru_cache(maxsize=1)
def collect_env_info():
    """Torch's environment report plus the Pillow version (computed once per process: it is slow)."""
    import PIL
    from torch.utils.collect_env import get_pretty_env_info

    return get_pretty_env_info() + f"\n        Pillow ({PIL.__version__})"


def distinct(items):
    """``items`` in order, each object once (by identity), None left out."""
    found = []
    for item in items:
        if item is not None and all(item is not other for other in found):
            found.append(item)
    return found
