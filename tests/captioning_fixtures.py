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
