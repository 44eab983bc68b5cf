"""CLIP weights by name: OpenAI's release files, downloaded into a cache folder and checked."""
import hashlib
import os
import urllib.request

import torch

from .model import build_model

_BASE = "https://openaipublic.azureedge.net/clip/models"
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
    return os.environ.get("CLIP_CACHE_DIR") or os.path.expanduser("~/.cache/clip")


def expected_sha256(url):
    return url.split("/")[-2]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_url(url, target):
    """Fetch ``url`` into ``target`` through a temporary file, with a progress bar."""
    from tqdm import tqdm

    tmp = f"{target}.part{os.getpid()}"
    with urllib.request.urlopen(url) as source, open(tmp, "wb") as output:
        total = int(source.info().get("Content-Length") or 0)
        with tqdm(total=total, ncols=80, unit="iB", unit_scale=True, unit_divisor=1024) as bar:
            for chunk in iter(lambda: source.read(8192), b""):
                output.write(chunk)
                bar.update(len(chunk))
    os.replace(tmp, target)


def resolve_model_file(name, path=None, cache_dir=None):
    """The local weights file for ``name`` (or ``path``), downloading and checking it if needed."""
    if path:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'CLIP weights file not found: "{path}" (set by MODEL.BACKBONE.PATH)')
        return path
    if name not in MODELS:
        raise ValueError(f'Unknown CLIP model "{name}"; available models: {", ".join(MODELS)}')
    url = MODELS[name]
    sha = expected_sha256(url)
    cache_dir = cache_dir or default_cache_dir()
    target = os.path.join(cache_dir, os.path.basename(url))
    if not os.path.isfile(target):
        os.makedirs(cache_dir, exist_ok=True)
        try:
            download_url(url, target)
        except OSError as e:
            raise FileNotFoundError(
                f"Cannot download the CLIP weights {os.path.basename(url)} for {name} ({e}). "
                f'Put the file in "{cache_dir}" (or set CLIP_CACHE_DIR), get it from {url}; '
                f"its SHA256 must be {sha}. Or name any local copy with MODEL.BACKBONE.PATH."
            ) from None
    actual = sha256_of(target)
    if actual != sha:
        raise RuntimeError(
            f'The CLIP weights file "{target}" is corrupt: SHA256 {actual}, expected {sha}. '
            "Delete it and run again to download it afresh."
        )
    return target


def load_state_dict(file):
    """OpenAI's state dict from a TorchScript release archive or a plain state-dict file."""
    try:
        return torch.jit.load(file, map_location="cpu").state_dict()
    except (RuntimeError, ValueError):
        pass
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(
            f'"{file}" is neither a TorchScript CLIP archive nor a state-dict file ({e.__class__.__name__})'
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or "token_embedding.weight" not in state:
        raise RuntimeError(f'"{file}" does not hold CLIP weights with OpenAI\'s keys (no token_embedding.weight)')
    return state


def load(name, path=None, cache_dir=None, device="cpu"):
    """A CLIP model (fp32, eval mode) by release name or from a local file."""
    return build_model(load_state_dict(resolve_model_file(name, path, cache_dir))).to(device)
