"""TaskRes: base classifier, logits and one Adam step against a straightforward recomputation (fp32),
the enhanced base file, the ImageNet-A/-R row remap."""
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import clip
from engine import TrainerBase
from engine.config import get_cfg_default
from engine.data.datasets import build_dataset
from tests import tiny_run
from tools.synthetic_data import make_dataset
from tools.tiny_clip import tiny_clip_model
from trainers.config import extend_cfg
from trainers.taskres import (
    TaskRes,
    TaskResLearner,
    class_eot_features,
    imagenet_subset_rows,
    load_enhanced_projection,
    taskres_templates,
)
from trainers.zsclip import IMAGENET_TEMPLATES_SELECT

PET_TEMPLATE = "a photo of a {}, a type of pet."


def _build(pets_root, clip_path, out, *flags):
    return tiny_run.build(pets_root, out, clip_path, "TaskRes", "TaskRes/adam_lr2e-3_B256_ep100",
                          "TRAINER.TaskRes.RESIDUAL_SCALE", "0.5", "TRAINER.TaskRes.PREC", "fp32", flags=flags,
                          batch=None, shots=2, epochs=None)


def _reference_base(clip_model, classnames, templates, projection=None):
    """The reference recipe: per class, encode_text of every template, mean without normalising."""
    if projection is not None:
        clip_model.text_projection.data.copy_(projection)
    with torch.no_grad():
        return torch.stack([clip_model.encode_text(clip.tokenize([t.format(c) for t in templates])).mean(0)
                            for c in classnames])


@pytest.fixture(scope="module")
def trainer(pets_root, tiny_vit_path, tmp_path_factory):
    return _build(pets_root, tiny_vit_path, str(tmp_path_factory.mktemp("taskres")))


def test_templates_are_a_fresh_copy():
    first = taskres_templates("ImageNet")
    assert first == list(IMAGENET_TEMPLATES_SELECT) + ["a photo of a {}."] and len(first) == 8
    first.append("grown")
    assert taskres_templates("ImageNet") == list(IMAGENET_TEMPLATES_SELECT) + ["a photo of a {}."]
    assert taskres_templates("OxfordPets") == [PET_TEMPLATE]
    assert taskres_templates("DescribableTextures") == ["{} texture."]


def test_regular_base_equals_reference_recipe(trainer):
    clip_model = tiny_clip_model("vit")
    names = trainer.dm.dataset.classnames
    expected = _reference_base(clip_model, names, [PET_TEMPLATE])
    learner = trainer.model.prompt_learner
    assert torch.allclose(learner.base_text_features, expected, atol=1e-5)
    # several templates: the mean of the unnormalised per-template features
    eight = taskres_templates("ImageNet")
    eot = class_eot_features(clip_model, names[:2], eight)
    assert eot.shape == (2, 8, 64)
    mean = (eot @ clip_model.text_projection).mean(1)
    assert torch.allclose(mean, _reference_base(clip_model, names[:2], eight), atol=1e-5)


def test_only_the_residual_trains_and_no_text_tower(trainer):
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable == ["prompt_learner.text_feature_residuals"]
    assert not any("token_embedding" in n or n.startswith("transformer") for n, _ in trainer.model.named_parameters())
    learner = trainer._models["prompt_learner"]
    assert set(learner.state_dict()) == {"base_text_features", "text_feature_residuals"}
    assert torch.count_nonzero(learner.text_feature_residuals) == 0


def test_logits_and_one_adam_step_match_recomputation(trainer):
    clip_model = tiny_clip_model("vit")
    learner = trainer.model.prompt_learner
    torch.manual_seed(0)
    with torch.no_grad():
        learner.text_feature_residuals.normal_(std=0.1)
    x0 = learner.text_feature_residuals.detach().clone()
    base = learner.base_text_features.clone()
    images, labels = torch.randn(5, 3, 32, 32), torch.tensor([0, 1, 2, 3, 4])

    def logits(x):
        img = clip_model.encode_image(images)
        img = img / img.norm(dim=-1, keepdim=True)
        weights = base + 0.5 * x  # the residual is added before normalising
        weights = weights / weights.norm(dim=-1, keepdim=True)
        return clip_model.logit_scale.exp() * img @ weights.t()

    with torch.no_grad():
        assert torch.allclose(trainer.model(images), logits(x0), atol=1e-5)

    # one Adam step (first step: update = lr * g / (|g| + eps), g with the L2 weight decay)
    x = x0.clone().requires_grad_(True)
    F.cross_entropy(logits(x), labels).backward()
    group = trainer.optim.param_groups[0]
    grad = x.grad + group["weight_decay"] * x0
    expected = x0 - group["lr"] * grad / (grad.abs() + group["eps"])
    trainer.forward_backward({"img": images, "label": labels})
    assert group["lr"] == pytest.approx(1e-5)  # the constant warm-up epoch
    assert torch.allclose(learner.text_feature_residuals, expected, atol=1e-7)
    assert torch.equal(learner.base_text_features, base)


def test_enhanced_base_file(trainer, pets_root, tiny_vit_path, tmp_path):
    clip_model = tiny_clip_model("vit")
    torch.manual_seed(1)
    projection = clip_model.text_projection.detach() + 0.05 * torch.randn(64, 32)
    path = tmp_path / "model.pth.tar"
    torch.save({"state_dict": {"weight": projection.t().contiguous()}, "epoch": 100}, path)  # reference format
    enhanced = _build(pets_root, tiny_vit_path, str(tmp_path / "out"), "--enhanced-base", str(path))
    base = enhanced.model.prompt_learner.base_text_features
    expected = _reference_base(clip_model, enhanced.dm.dataset.classnames, [PET_TEMPLATE], projection)
    assert torch.allclose(base, expected, atol=1e-5)
    assert not torch.allclose(base, trainer.model.prompt_learner.base_text_features, atol=1e-3)

    torch.save({"state_dict": {"bias": projection}}, tmp_path / "nokey.pth.tar")
    torch.save({"state_dict": {"weight": torch.zeros(32, 32)}}, tmp_path / "shape.pth.tar")
    for name, why in (("nokey", "has no state_dict.weight"), ("shape", "holds a weight of shape [32, 32]")):
        bad = str(tmp_path / f"{name}.pth.tar")
        with pytest.raises(ValueError, match=re.escape(f'ENHANCED_BASE "{bad}" {why}') + r".*tensor \[32, 64\]"):
            load_enhanced_projection(bad, 64, 32, "ViT-B/16")
    with pytest.raises(FileNotFoundError, match="ENHANCED_BASE .*missing.pth.tar\" does not exist"):
        load_enhanced_projection(str(tmp_path / "missing.pth.tar"), 64, 32)


def test_imagenet_a_rows(tmp_path):
    make_dataset("ImageNetA", str(tmp_path), num_classes=2, images_per_class=4)
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.DATASET.NAME, cfg.DATASET.ROOT = "ImageNetA", str(tmp_path)
    dataset = build_dataset(cfg)
    assert imagenet_subset_rows(dataset, 4) == [1, 3]  # every second class of a 4-class ImageNet
    with pytest.raises(ValueError, match="The checkpoint has 5 classes"):
        imagenet_subset_rows(dataset, 5)

    # loading an ImageNet checkpoint (4 classes) keeps rows 1 and 3 of both tensors
    trainer = TaskRes.__new__(TaskRes)
    TrainerBase.__init__(trainer)
    trainer.model = SimpleNamespace(prompt_learner=TaskResLearner(torch.zeros(2, 8), 0.5))
    for name, (module, keys) in trainer.saved_models().items():
        trainer.register_model(name, module, keys=keys)
    trainer.num_classes, trainer.dm = 2, SimpleNamespace(dataset=dataset)
    base, residual = torch.randn(4, 8), torch.randn(4, 8)
    state = {"base_text_features": base, "text_feature_residuals": residual}
    learner = trainer.registered_models()["prompt_learner"]
    learner.keys.restore("prompt_learner", learner.module, {"state_dict": state})
    learner = learner.module
    assert torch.equal(learner.base_text_features, base[[1, 3]])
    assert torch.equal(learner.text_feature_residuals, residual[[1, 3]])
