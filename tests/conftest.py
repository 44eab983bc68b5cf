"""Shared fixtures: a tiny CLIP file and a miniature OxfordPets data set, built once per session (and
once per worker under pytest-xdist). The train.py options of a tiny run on them: tests/tiny_run.py."""
import os

import pytest
import torch

from tools.synthetic_data import make_dataset
from tools.tiny_clip import save_tiny_clip
from tools.world import pretrain as world_pretrain


@pytest.fixture(scope="session", autouse=True)
def feature_cache_folder(tmp_path_factory):
    """The evaluation feature cache of every test (and of the train.py processes tests start) in
    the session's temporary folder, not in the home folder."""
    folder = str(tmp_path_factory.mktemp("feature_cache"))
    previous = os.environ.get("TEXTREFINER_FEATURE_CACHE")
    os.environ["TEXTREFINER_FEATURE_CACHE"] = folder
    yield folder
    if previous is None:
        os.environ.pop("TEXTREFINER_FEATURE_CACHE")
    else:
        os.environ["TEXTREFINER_FEATURE_CACHE"] = previous


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models run as fast on one thread, and a busy machine (or a second pytest-xdist worker)
    loses much to thread contention; the subprocesses get OMP_NUM_THREADS=1 (tests/tiny_run.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_vit_path(tmp_path_factory):
    return str(save_tiny_clip(str(tmp_path_factory.mktemp("clip") / "tiny_vit.pt"), kind="vit", fmt="state_dict"))


@pytest.fixture(scope="session")
def pets_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_dataset("OxfordPets", str(root), num_classes=6, images_per_class=10, seed=0)
    return str(root)


@pytest.fixture(scope="session")
def tiny_teacher_path(tmp_path_factory):
    """A tiny "ViT-L/14": wider embedding (48) and one more block than the student, same input size."""
    path = tmp_path_factory.mktemp("clip") / "tiny_teacher.pt"
    return str(save_tiny_clip(str(path), kind="vit", fmt="state_dict", seed=3, embed_dim=48, vision_layers=3, text_layers=3))


@pytest.fixture(scope="session")
def small_world_clip(tmp_path_factory):
    """A world CLIP pretrained in the session (CI has no cache): 150 steps of 64 pairs; it knows
    colours, hardly anything else yet."""
    path = tmp_path_factory.mktemp("world") / "small_world_clip.pt"
    return world_pretrain.ensure_world_clip(str(path), log=lambda message: None, steps=150, batch_size=64)
