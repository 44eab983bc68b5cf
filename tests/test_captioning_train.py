"""Mapper training on cached features: CapDec noise statistics, the schedule, loss going down, feature files."""
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tools.world.captions import caption, random_attributes
from tta.captioning.features import CaptionFeatures, load_features, save_features
from tta.captioning.train import MapperTraining, capdec_noise, warmup_then_linear
from tests.captioning_fixtures import CLIP_DIM, tiny_captioner, tiny_opt_folder  # noqa: F401


def test_capdec_noise_statistics():
    x = F.normalize(torch.randn(4000, 512, generator=torch.Generator().manual_seed(0)), dim=-1)
    noisy = capdec_noise(x, 0.016, torch.Generator().manual_seed(1))
    expected = F.normalize(x + math.sqrt(0.016) * torch.randn(4000, 512, generator=torch.Generator().manual_seed(1)), dim=-1)
    torch.testing.assert_close(noisy, expected)
    torch.testing.assert_close(noisy.norm(dim=-1), torch.ones(4000))
    # |x + noise|^2 ~ 1 + 512 * 0.016; the noise along x has std sqrt(0.016): cos(noisy, x) = (1 + n_x) / |x + noise|
    cos, norm = (noisy * x).sum(dim=-1), math.sqrt(1 + 512 * 0.016)
    assert float(cos.mean()) == pytest.approx(1 / norm, abs=0.005)
    assert float(cos.std()) == pytest.approx(math.sqrt(0.016) / norm, rel=0.1)
    assert torch.equal(capdec_noise(x, 0.0), x)


def test_schedule_as_the_reference():
    f = warmup_then_linear(5000, 20000)
    assert f(1) == 1 / 5000 and f(4999) == 4999 / 5000 and f(5000) == 1.0
    assert f(12500) == pytest.approx(0.5) and f(20000) == 0.0


def world_features(n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    captions = [caption(random_attributes(rng), rng) for _ in range(n)]
    image = torch.randn(n // 2, CLIP_DIM, generator=gen)
    image_index = torch.arange(n) // 2
    text = image[image_index] + 0.1 * torch.randn(n, CLIP_DIM, generator=gen)
    return CaptionFeatures(image, text, image_index, captions, [f"img{i}" for i in range(n // 2)], "tiny")


@pytest.mark.parametrize("use_image", [False, True])
def test_training_lowers_the_loss_and_only_the_mapper_moves(tiny_opt_folder, use_image):
    captioner, tokenizer = tiny_captioner(tiny_opt_folder)
    llm_before = {k: v.clone() for k, v in captioner.llm.state_dict().items()}
    features = world_features(32)
    training = MapperTraining(captioner, tokenizer, features, use_image_embedding=use_image, lr=1e-2, batch_size=8,
                              epochs=5, warmup_steps=2)
    losses = [training.run_epoch() for _ in range(5)]
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.9 * losses[0], losses
    assert all(torch.equal(v, llm_before[k]) for k, v in captioner.llm.state_dict().items())
    assert training.optimizer.param_groups[0]["lr"] == 0.0  # linear decay to 0 at the last update


def test_feature_files_round_trip_and_reference_pickle(tmp_path):
    features = world_features(8)
    path = str(tmp_path / "coco_train_features.safetensors")
    save_features(path, features)
    back = load_features(path)
    assert torch.equal(back.image, features.image) and torch.equal(back.text, features.text)
    assert back.captions == features.captions and back.image_ids == features.image_ids and back.clip == "tiny"
    ref = tmp_path / "COCO_train_set_image_text_vitb16_v2.pkl"
    with open(ref, "wb") as f:  # the reference's extractor: pickle.dump of a dict with fp16 tensors
        pickle.dump({"clip_text_embedding": features.text.half(), "clip_image_embedding": features.image.half(),
                     "captions": features.captions, "image_ids": features.image_ids,
                     "text_index": list(range(8)), "image_index": features.image_index.tolist()}, f)
    read = load_features(str(ref))
    assert torch.equal(read.text, features.text.half().float()) and read.captions == features.captions
    assert torch.equal(read.image_index, features.image_index)
    with open(ref, "wb") as f:
        pickle.dump({"clip_text_embedding": features.text, "x": torch.nn.Linear(1, 1)}, f)
    with pytest.raises(Exception, match="Refused to load"):
        load_features(str(ref))
    with pytest.raises(FileNotFoundError, match="--data"):
        load_features(str(tmp_path / "none.safetensors"))
