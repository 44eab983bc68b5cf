"""CoOp's prompt learner (positions, CSC, init text) and the zero-shot template ensemble."""
import pytest
import torch
from yacs.config import CfgNode

import clip
from tools.tiny_clip import tiny_clip_model
from engine.step import resolve_precision
from trainers.coop import CustomCLIP, PromptLearner

NAMES = ["cat", "golden retriever", "sea_lion"]


def _cfg(**kw):
    base = dict(N_CTX=4, CSC=False, CTX_INIT="", CLASS_TOKEN_POSITION="end")
    base.update(kw)
    return CfgNode(base)


@pytest.fixture(scope="module")
def model():
    return tiny_clip_model("vit")


def test_end_position_and_init_text(model):
    pl = PromptLearner(_cfg(CTX_INIT="a photo of a"), (32, 32), NAMES, model)
    assert pl.ctx.shape == (4, model.ln_final.weight.shape[0])
    tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES])
    with torch.no_grad():
        expected = model.token_embedding(tokens)
    assert torch.allclose(pl(), expected)  # the init context reproduces the hand-written prompt


@pytest.mark.parametrize("position", ["middle", "front"])
def test_middle_and_front_positions(model, position):
    torch.manual_seed(0)
    pl = PromptLearner(_cfg(CLASS_TOKEN_POSITION=position, CSC=True), (32, 32), NAMES, model)
    prompts = pl()
    assert prompts.shape == (3, 77, model.ln_final.weight.shape[0]) and pl.ctx.shape[:2] == (3, 4)
    i = 1  # "golden retriever": 2 BPE tokens
    name_len = pl.name_lens[i]
    name = pl.token_suffix[i, :name_len]
    if position == "front":
        assert torch.equal(prompts[i, 1:1 + name_len], name) and torch.equal(prompts[i, 1 + name_len:5 + name_len],
                                                                              pl.ctx[i])
    else:
        assert torch.equal(prompts[i, 1:3], pl.ctx[i, :2]) and torch.equal(prompts[i, 3:3 + name_len], name)
        assert torch.equal(prompts[i, 3 + name_len:5 + name_len], pl.ctx[i, 2:])
    assert torch.equal(prompts[i, 0], pl.token_prefix[i, 0])  # SOS stays first


def test_bad_position_and_size(model):
    with pytest.raises(ValueError, match="CLASS_TOKEN_POSITION"):
        PromptLearner(_cfg(CLASS_TOKEN_POSITION="left"), (32, 32), NAMES, model)
    with pytest.raises(ValueError, match=r"INPUT.SIZE \(224, 224\) does not match the CLIP input resolution 32"):
        PromptLearner(_cfg(), (224, 224), NAMES, model)


def test_frozen_text_equals_recomputed(model):
    custom = CustomCLIP(_cfg(), (32, 32), NAMES, model)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        live = custom(image)
        custom.freeze_text()
        frozen = custom(image)
        custom.unfreeze_text()
    assert torch.allclose(live, frozen)


def test_fp16_on_cpu_runs_fp32_with_a_log_line(capsys):
    assert resolve_precision("fp16", torch.device("cpu")) == "fp32"
    assert "PREC fp16 needs CUDA: running in fp32 on cpu" in capsys.readouterr().out
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(ValueError, match="PREC must be one of"):
        resolve_precision("bf16", torch.device("cpu"))


def test_zeroshot_ensemble_templates_do_not_accumulate():
    from trainers.zsclip import IMAGENET_TEMPLATES_SELECT, ZeroshotCLIP2

    holder = type("T", (), {"cfg": CfgNode({"DATASET": CfgNode({"NAME": "OxfordPets"})})})()
    first = ZeroshotCLIP2.templates(holder)
    second = ZeroshotCLIP2.templates(holder)
    assert first == second == list(IMAGENET_TEMPLATES_SELECT) + ["a photo of a {}, a type of pet."]
    holder.cfg.DATASET.NAME = "ImageNet"
    assert ZeroshotCLIP2.templates(holder) == list(IMAGENET_TEMPLATES_SELECT)


@pytest.mark.parametrize("kw", [dict(CTX_INIT="a photo of a"), dict(N_CTX=8)])
def test_shared_prefix_text_equals_full_prompts(model, kw):
    """Computing SOS + generic context once gives the full per-class text features (and gradients)."""
    torch.manual_seed(0)
    custom = CustomCLIP(_cfg(**kw), (32, 32), NAMES + ["x" * 30], model)
    assert custom.prompt_learner.shared_prefix() is not None
    fast = custom.text_features()
    full = custom.text_encoder(custom.prompt_learner(), custom.tokenized_prompts)
    full = full / full.norm(dim=-1, keepdim=True)
    assert torch.allclose(fast, full, atol=1e-5)
    (g_fast,) = torch.autograd.grad(fast.square().sum(), custom.prompt_learner.ctx)
    (g_full,) = torch.autograd.grad(full.square().sum(), custom.prompt_learner.ctx)
    assert torch.allclose(g_fast, g_full, atol=1e-5)


def test_no_shared_prefix_for_csc_or_middle(model):
    assert PromptLearner(_cfg(CSC=True), (32, 32), NAMES, model).shared_prefix() is None
    assert PromptLearner(_cfg(CLASS_TOKEN_POSITION="middle"), (32, 32), NAMES, model).shared_prefix() is None
