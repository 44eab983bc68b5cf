"""OpenAI CLIP rebuilt from state dicts, its weights loader and tokenizer."""
from .download import MODELS, available_models, load, load_state_dict, resolve_model_file
from .model import build_model
from .tokenizer import tokenize
