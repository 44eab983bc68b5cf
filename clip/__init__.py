"""CLIP rebuilt from state dicts (OpenAI's, OpenCLIP's and Hugging Face layouts), its loader and tokenizer."""
from .download import MODELS, available_models, default_cache_dir, load_state_dict, resolve_model_file
from .loading import load
from .model import CLIP, add_ivlp_prompts, build_model, convert_weights, encode_text_embeddings
from .tokenizer import decode, encode, tokenize

__all__ = [
    "CLIP",
    "MODELS",
    "add_ivlp_prompts",
    "available_models",
    "build_model",
    "convert_weights",
    "decode",
    "default_cache_dir",
    "encode",
    "encode_text_embeddings",
    "load",
    "load_state_dict",
    "resolve_model_file",
    "tokenize",
]
