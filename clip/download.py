"""CLIP weights by name: OpenAI's release files, downloaded into a cache folder and checked.

Offline, the file can be put in the cache folder by hand, or any local copy named with
MODEL.BACKBONE.PATH. Both OpenAI's TorchScript archives and plain state-dict files load, as
data: no code in the file runs (clip.torchscript, engine.utils.safe_pickle).
``clip.load`` (clip/loading.py) reads these and the other CLIP layouts.
"""
import hashlib
import http.client
import os
import pickle
import tempfile
import urllib.request
import warnings
import zipfile

import torch
from tqdm import tqdm

from engine.utils.safe_pickle import TRUST_ENV, UntrustedPickleError, is_torchscript_archive, is_trusted, torch_load

from .model import TEXT_KEYS
from .torchscript import read_state_dict as read_torchscript_state_dict

_BASE = "https://openaipublic.azureedge.net/clip/models"
# the second-to-last path segment of each URL is the file's SHA256
MODELS = {
    "RN50": f"{_BASE}/afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
    "RN101": f"{_BASE}/8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt",
    "RN50x4": f"{_BASE}/7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt",
    "RN50x16": f"{_BASE}/52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt",
    "RN50x64": f"{_BASE}/be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt",
    "ViT-B/32": f"{_BASE}/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    "ViT-B/16": f"{_BASE}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
    "ViT-L/14": f"{_BASE}/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    "ViT-L/14@336px": f"{_BASE}/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
}


def available_models():
    return list(MODELS)


def default_cache_dir():
    """$CLIP_CACHE_DIR, else ~/.cache/clip."""
    return os.environ.get("CLIP_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "clip")


def expected_sha256(url):
    return url.split("/")[-2]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url, target):
    """Fetch ``url`` into ``target`` with a progress bar; the file appears only once complete."""
    folder = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(target) + ".", suffix=".part", dir=folder)
    try:
        with urllib.request.urlopen(url) as source, os.fdopen(fd, "wb") as output:
            total = int(source.info().get("Content-Length") or 0)
            with tqdm(total=total, ncols=80, unit="iB", unit_scale=True, unit_divisor=1024) as bar:
                for chunk in iter(lambda: source.read(1 << 16), b""):
                    output.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_sha256(path, sha):
    actual = sha256_of(path)
    if actual != sha:
        raise RuntimeError(
            f'The CLIP weights file "{path}" is corrupt: its SHA256 is {actual}, expected {sha}. '
            "Delete it and run again to download it afresh (or put a good copy there)."
        )


def resolve_model_file(name, path=None, cache_dir=None):
    """The local weights file of model ``name`` (or ``path``), downloaded and checked if needed."""
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'CLIP weights file not found: "{path}" (set by MODEL.BACKBONE.PATH)')
        return path
    if name not in MODELS:
        raise ValueError(
            f'Unknown CLIP model "{name}"; available models: {", ".join(MODELS)} '
            "(or name a local weights file with MODEL.BACKBONE.PATH)"
        )
    url = MODELS[name]
    sha = expected_sha256(url)
    cache_dir = cache_dir or default_cache_dir()
    filename = os.path.basename(url)
    target = os.path.join(cache_dir, filename)
    if not os.path.isfile(target):
        try:
            os.makedirs(cache_dir, exist_ok=True)
            download_url(url, target)
        except (OSError, http.client.HTTPException) as e:
            raise FileNotFoundError(
                f"Cannot download the CLIP weights {filename} of {name} ({e}). Download {url} yourself "
                f'and put it in "{cache_dir}" (the folder is set by CLIP_CACHE_DIR); its SHA256 must be '
                f"{sha}. Or name any local copy with MODEL.BACKBONE.PATH."
            ) from None
    _check_sha256(target, sha)
    return target


def _not_clip(file, why):
    return RuntimeError(
        f'"{file}" is neither an OpenAI CLIP TorchScript archive nor a state-dict file with OpenAI\'s '
        f"CLIP keys ({why})"
    )


def _torchscript_state_dict(file):
    """The archive's weights read as data; torch.jit.load only for a file the user trusts."""
    try:
        return read_torchscript_state_dict(file)
    except UntrustedPickleError:
        if not is_trusted(file):
            raise
    except (ValueError, RuntimeError, KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as e:
        if not is_trusted(file):
            raise _not_clip(
                file,
                f"its TorchScript archive cannot be read as data: {e}. If you trust the file and whoever made it, "
                f'{TRUST_ENV}="{os.path.abspath(file)}" loads it with torch.jit.load, which runs its code',
            ) from None
    print(f'Loading "{file}" with torch.jit.load (trusted by {TRUST_ENV})')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still reads the releases
        try:
            return torch.jit.load(file, map_location="cpu").state_dict()
        except RuntimeError as e:
            raise _not_clip(file, f"the TorchScript archive does not load: {str(e).splitlines()[0]}") from None


def load_state_dict(file):
    """OpenAI's state dict from a TorchScript release archive or a plain state-dict file, read as data."""
    if not os.path.isfile(file):
        raise FileNotFoundError(f'CLIP weights file not found: "{file}"')
    if is_torchscript_archive(file):
        return _torchscript_state_dict(file)
    try:
        state = torch_load(file)
    except UntrustedPickleError:
        raise
    except Exception as e:  # a file torch cannot read at all: say which file it is
        raise _not_clip(file, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or any(k not in state for k in TEXT_KEYS):
        raise _not_clip(file, f"it holds no {', '.join(TEXT_KEYS)}")
    return state

