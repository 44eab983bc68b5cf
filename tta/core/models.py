"""What every test-time adaptation task shares about models: the weights a CLIP argument names
(file, folder, hub name or release name, checked before any image is read), loading a CLIP through
the same loader as training, and the peak-memory log line."""
import os
import resource

import torch

import clip
from clip import hf_layout, openclip_layout


def clip_file(value, flag):
    """The weights of a CLIP argument (``flag`` names it in errors): an existing file or model folder,
    an OpenCLIP / Hugging Face hub name (read when the model is built), or the file of a release name
    (downloaded into the cache when it is missing there)."""
    if os.path.exists(value) or value.startswith((openclip_layout.PREFIX, hf_layout.PREFIX)):
        return value
    if value not in clip.MODELS:
        raise FileNotFoundError(
            f'{flag} "{value}" is neither a weights file or folder nor a CLIP release name ({", ".join(clip.available_models())}): '
            f"check the path, or give {flag} a release name"
        )
    url, cache = clip.MODELS[value], clip.default_cache_dir()
    try:
        return clip.resolve_model_file(value)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f'The weights of {flag} {value} are not in "{cache}" and cannot be downloaded ({e.__context__ or e}): download '
            f"{url} into that folder (CLIP_CACHE_DIR sets it), or give a local weights file: {flag} /path/to/"
            f"{os.path.basename(url)}"
        ) from None


def load_clip_model(weights, device):
    """A CLIP (fp32, eval) from its weights file or folder, or by hub name."""
    if os.path.exists(weights):
        return clip.load(os.path.basename(weights), path=weights).to(device).eval()
    return clip.load(weights).to(device).eval()


def peak_memory_line(device):
    if device.type == "cuda":
        gb = torch.cuda.max_memory_allocated(device) / 1024**3
        return f"The maximum GPU memory occupied by this program is {gb:.2f} GB"
    gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux
    return f"The maximum resident memory of this program is {gb:.2f} GB"
