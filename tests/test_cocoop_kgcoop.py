"""CoCoOp and KgCoOp models against the reference computation written out plainly
(tests/cocoop_kgcoop_reference.py: full 77-token prompts, one text-encoder run per image)."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

import clip
from engine.config import CfgNode, get_cfg_default
from tools.tiny_clip import tiny_clip_model
from trainers.cocoop import CoCoOpCLIP
from trainers.config import extend_cfg
from trainers.kgcoop import KGCOOP_TEMPLATES, hand_crafted_text_features, kgcoop_template, knowledge_guided_loss

from tests.cocoop_kgcoop_reference import plain_cocoop_logits, plain_kg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["cat", "golden retriever", "sea_lion", "x" * 12]
SIZE = (32, 32)


def _cocoop_cfg(**kw):
    return CfgNode(dict(dict(N_CTX=4, CTX_INIT="", PREC="fp32"), **kw))


@pytest.fixture(scope="module")
def clip_model():
    return tiny_clip_model("vit").requires_grad_(False)  # frozen, as the trainers keep it


def _batch(seed=0, b=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, *SIZE, generator=g), torch.tensor([0, 2, 3][:b])


# ----- CoCoOp -------------------------------------------------------------------------------------
def test_meta_net_names_and_widths(clip_model):
    model = CoCoOpCLIP(_cocoop_cfg(), SIZE, NAMES, clip_model)
    shapes = {k: tuple(v.shape) for k, v in model.prompt_learner.state_dict().items()}
    d, vis = clip_model.ln_final.weight.shape[0], clip_model.visual.output_dim  # 64, 32
    assert shapes["ctx"] == (4, d)
    assert shapes["meta_net.linear1.weight"] == (vis // 16, vis) and shapes["meta_net.linear2.weight"] == (d, vis // 16)
    assert set(shapes) == {"ctx", "meta_net.linear1.weight", "meta_net.linear1.bias", "meta_net.linear2.weight",
                           "meta_net.linear2.bias", "token_prefix", "token_suffix"}


def test_init_text_gives_the_hand_written_prompt_when_the_bias_is_zero(clip_model):
    model = CoCoOpCLIP(_cocoop_cfg(N_CTX=16, CTX_INIT="a photo of a"), SIZE, NAMES, clip_model)
    assert model.prompt_learner.n_ctx == 4  # the init words override N_CTX
    with torch.no_grad():
        model.prompt_learner.meta_net.linear2.weight.zero_()
        model.prompt_learner.meta_net.linear2.bias.zero_()
        text = model.instance_text_features(torch.randn(2, 32))  # [2, C, D]
        tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}." for n in NAMES])
        expected = clip_model.encode_text(tokens)
    expected = expected / expected.norm(dim=-1, keepdim=True)
    assert text.shape == (2, len(NAMES), 32)
    assert torch.allclose(text[0], expected, atol=1e-5) and torch.allclose(text[1], expected, atol=1e-5)


def test_cocoop_logits_loss_and_sgd_step_match_the_reference(clip_model):
    torch.manual_seed(0)
    model = CoCoOpCLIP(_cocoop_cfg(), SIZE, NAMES, clip_model)
    plain = copy.deepcopy(model.prompt_learner)
    initial = {n: p.detach().clone() for n, p in plain.named_parameters()}
    image, label = _batch()

    logits = model(image)
    expected = plain_cocoop_logits(clip_model, plain, image)
    assert logits.shape == (3, len(NAMES))
    assert torch.allclose(logits, expected, atol=1e-4)
    loss, plain_loss = F.cross_entropy(logits, label), F.cross_entropy(expected, label)
    assert torch.allclose(loss, plain_loss, atol=1e-5)

    for learner, value in ((model.prompt_learner, loss), (plain, plain_loss)):
        params = [p for n, p in learner.named_parameters()]
        opt = torch.optim.SGD(params, lr=0.5, momentum=0.9, weight_decay=5e-4)
        opt.zero_grad()
        value.backward()
        opt.step()
    for (name, ours), (_, ref) in zip(model.prompt_learner.named_parameters(), plain.named_parameters()):
        assert torch.allclose(ours, ref, atol=1e-4), name
        assert not torch.allclose(ours, initial[name]), name  # the step moved every trainable tensor


def test_cocoop_class_text_needs_the_image(clip_model):
    model = CoCoOpCLIP(_cocoop_cfg(), SIZE, NAMES, clip_model)
    with pytest.raises(RuntimeError, match="depends on the image"):
        model.text_features()


def test_meta_net_needs_a_wide_enough_image_feature():
    from trainers.cocoop import meta_net

    with pytest.raises(ValueError, match="at least 16, got 8"):
        meta_net(8, 64)


# ----- KgCoOp -------------------------------------------------------------------------------------
def test_kgcoop_templates_are_the_references():
    assert kgcoop_template("DescribableTextures") == "a photo of a {}, a type of texture."
    assert kgcoop_template("OxfordPets") == "a photo of a {}, a type of pet."
    assert kgcoop_template("EuroSAT") == "a centered satellite photo of {}."
    ours = [name for name in KGCOOP_TEMPLATES if name.startswith("World") or name == "ImageFolder"]
    assert len(KGCOOP_TEMPLATES) - len(ours) == 15  # the reference's, + the world's and ImageFolder's
    with pytest.raises(KeyError, match='data set "World".*KGCOOP_TEMPLATES'):
        kgcoop_template("World")
    assert kgcoop_template("ImageFolder") == "a photo of a {}."
    assert kgcoop_template("ImageFolder", "a photo of a {}, a bird.") == "a photo of a {}, a bird."  # PROMPT_TEMPLATE


def test_knowledge_guided_loss_is_one_minus_mean_cosine(clip_model):
    torch.manual_seed(0)
    text = F.normalize(torch.randn(5, 32), dim=-1)
    clip_text = F.normalize(torch.randn(5, 32), dim=-1)
    assert torch.allclose(knowledge_guided_loss(text, clip_text), plain_kg(text, clip_text))
    # for unit vectors: half the mean squared distance
    assert torch.allclose(knowledge_guided_loss(text, clip_text), (text - clip_text).pow(2).sum(-1).mean() / 2)
    assert float(knowledge_guided_loss(text, text)) == pytest.approx(0.0, abs=1e-6)


def test_hand_crafted_text_features(clip_model):
    features = hand_crafted_text_features(clip_model, NAMES, "a photo of a {}, a type of pet.")
    with torch.no_grad():
        tokens = clip.tokenize([f"a photo of a {n.replace('_', ' ')}, a type of pet." for n in NAMES])
        expected = clip_model.encode_text(tokens)
    assert torch.allclose(features, expected / expected.norm(dim=-1, keepdim=True), atol=1e-6)
    assert not features.requires_grad


# ----- configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path, expected",
    [
        ("CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml", ("COCOOP", 4, "a photo of a", 1, 10)),
        ("CoCoOp/vit_b16_c4_ep10_batch1.yaml", ("COCOOP", 4, "", 1, 10)),
        ("CoCoOp/vit_b16_c8_ep10_batch1.yaml", ("COCOOP", 8, "", 1, 10)),
        ("CoCoOp/vit_b16_c16_ep10_batch1.yaml", ("COCOOP", 16, "", 1, 10)),
        ("KgCoOp/vit_b16_ep100_ctxv1.yaml", ("COOP", 16, "a photo of a", 128, 100)),
        ("KgCoOp/rn50_ep100.yaml", ("COOP", 16, "a photo of a", 128, 100)),
        ("TextRefiner/cocoop_vit_b16_c4_ep10_batch1_ctxv1.yaml", ("COCOOP", 4, "a photo of a", 1, 10)),
        ("TextRefiner/kgcoop_vit_b16_ep100_ctxv1.yaml", ("COOP", 16, "a photo of a", 128, 100)),
    ],
)
def test_configs_hold_the_reference_values(path, expected):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(os.path.join(REPO, "configs/trainers", path))
    key, n_ctx, init, batch, epochs = expected
    node = cfg.TRAINER[key]
    assert (node.N_CTX, node.CTX_INIT) == (n_ctx, init)
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH) == (batch, epochs)
    assert (cfg.OPTIM.LR, cfg.OPTIM.WARMUP_CONS_LR, cfg.DATALOADER.TEST.BATCH_SIZE) == (0.002, 1e-5, 100)
    assert cfg.TRAINER.COOP.W == (8.0 if path.startswith("TextRefiner/kgcoop") else 1.0)
    assert cfg.TEST.FINAL_MODEL == ("best_val" if path.startswith("TextRefiner/kgcoop") else "last_step")


def test_trainer_name_hint_prefers_a_case_only_difference():
    from engine.utils import check_availability

    with pytest.raises(ValueError, match=r"got \[Coop\] \(do you mean \[CoOp\]\?\)"):
        check_availability("Coop", ["CoCoOp", "CoOp", "KgCoOp"])
    with pytest.raises(ValueError, match=r"do you mean \[KgCoOp\]"):
        check_availability("KgCoop", ["CoCoOp", "CoOp", "KgCoOp"])
