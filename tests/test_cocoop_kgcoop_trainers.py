"""CoCoOp, KgCoOp and TextRefiner on them as trainers: one step against the reference computation
(tests/cocoop_kgcoop_reference.py), reference checkpoint folders, refiner losses per host."""
import copy

import pytest
import torch
import torch.nn.functional as F

import clip
from tests import tiny_run
from tests.cocoop_kgcoop_reference import (
    normalise,
    plain_clip_text,
    plain_cocoop_logits,
    plain_cocoop_text,
    plain_coop_text,
    plain_image_features,
    plain_kg,
    plain_local,
    plain_refine,
    plain_refiner_terms,
)

CONFIGS = {
    "CoCoOp": "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1",
    "KgCoOp": "KgCoOp/vit_b16_ep100_ctxv1",
}
LR = 0.5  # large enough that one step moves the weights well past the tolerance


def build(kind, root, clip_path, out, *opts, host=None):
    """A trainer as train.py builds it (not trained): kind "CoCoOp"/"KgCoOp", or TextRefiner on host."""
    trainer = "TextRefiner" if host else kind
    return tiny_run.build(root, out, clip_path, trainer, CONFIGS[kind], "DATASET.SUBSAMPLE_CLASSES", "base",
                          "OPTIM.LR", str(LR), "OPTIM.WARMUP_EPOCH", "0", "TRAINER.COOP.PREC", "fp32",
                          "TRAINER.COCOOP.PREC", "fp32", *(["TRAINER.TF.HOST", host] if host else []), *opts,
                          batch=None, shots=2, epochs=None)


@pytest.fixture(scope="module")
def clip_model(tiny_vit_path):
    return clip.load("ViT-B/16", path=tiny_vit_path, device="cpu").float().requires_grad_(False)


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"img": torch.randn(2, 3, 32, 32, generator=g), "label": torch.tensor([2, 0])}


def _sgd_step(params, loss):
    opt = torch.optim.SGD(params, lr=LR, momentum=0.9, weight_decay=5e-4)  # the configs' optimizer
    opt.zero_grad()
    loss.backward()
    opt.step()


def _assert_same_params(ours, plain):
    for (name, a), (_, b) in zip(ours.named_parameters(), plain.named_parameters()):
        if a.requires_grad:
            assert torch.allclose(a, b, atol=1e-4), name


# ----- baselines: logits, loss and one SGD step ------------------------------------------------------
def test_cocoop_step_matches_the_reference(tmp_path, pets_root, tiny_vit_path, clip_model):
    trainer = build("CoCoOp", pets_root, tiny_vit_path, str(tmp_path))
    trainer.set_model_mode("train")
    plain = copy.deepcopy(trainer.model.prompt_learner)
    batch = _batch()
    with torch.no_grad():
        ours = trainer.model(batch["img"])
    plain_logits = plain_cocoop_logits(clip_model, plain, batch["img"])
    assert torch.allclose(ours, plain_logits, atol=1e-4)
    expected = F.cross_entropy(plain_logits, batch["label"])
    summary = trainer.forward_backward(batch)
    assert summary["loss"] == pytest.approx(expected.item(), abs=1e-4)
    assert set(summary) == {"loss"}  # the reference logs the loss only
    _sgd_step([p for p in plain.parameters() if p.requires_grad], expected)
    _assert_same_params(trainer.model.prompt_learner, plain)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable == {"prompt_learner.ctx", "prompt_learner.meta_net.linear1.weight",
                         "prompt_learner.meta_net.linear1.bias", "prompt_learner.meta_net.linear2.weight",
                         "prompt_learner.meta_net.linear2.bias"}


def test_kgcoop_step_matches_the_reference(tmp_path, pets_root, tiny_vit_path, clip_model):
    trainer = build("KgCoOp", pets_root, tiny_vit_path, str(tmp_path), "TRAINER.COOP.W", "8.0")
    trainer.set_model_mode("train")
    plain = copy.deepcopy(trainer.model.prompt_learner)
    names = trainer.dm.dataset.classnames
    clip_text = plain_clip_text(clip_model, names, "a photo of a {}, a type of pet.")
    assert torch.allclose(trainer.clip_text, clip_text, atol=1e-5)
    batch = _batch()
    text = plain_coop_text(clip_model, plain)
    logits = clip_model.logit_scale.exp() * plain_image_features(clip_model, batch["img"]) @ text.t()
    expected = F.cross_entropy(logits, batch["label"]) + 8.0 * plain_kg(text, clip_text)
    summary = trainer.forward_backward(batch)
    assert summary["loss"] == pytest.approx(expected.item(), abs=1e-4)
    _sgd_step([plain.ctx], expected)
    _assert_same_params(trainer.model.prompt_learner, plain)
    assert [n for n, p in trainer.model.named_parameters() if p.requires_grad] == ["prompt_learner.ctx"]


# ----- checkpoints in the reference layout ------------------------------------------------------------
def _reference_folder(root, state_dict, epoch):
    folder = root / "prompt_learner"
    folder.mkdir(parents=True)
    torch.save({"state_dict": state_dict, "epoch": epoch, "optimizer": None, "scheduler": None},
               folder / f"model.pth.tar-{epoch}")
    return str(root)


@pytest.mark.parametrize("kind", ["CoCoOp", "KgCoOp"])
def test_reference_checkpoints_load(tmp_path, pets_root, tiny_vit_path, kind):
    trainer = build(kind, pets_root, tiny_vit_path, str(tmp_path / "run"))
    learner = trainer.model.prompt_learner
    # the reference saves the prompt learner's whole state; its class embeddings are for other classes
    state = {k: torch.randn(7, *v.shape[1:]) if k.startswith("token_") else torch.randn_like(v)
             for k, v in learner.state_dict().items()}
    if kind == "KgCoOp":  # the reference's unused parameters
        state.update({"bias_vectors": torch.randn(1, 512), "meta_net.linear1.weight": torch.randn(512, 512),
                      "meta_net.linear1.bias": torch.randn(512)})
    prefix = learner.token_prefix.clone()
    trainer.load_model(_reference_folder(tmp_path / "ref", state, 10), epoch=10)
    for name, value in learner.named_parameters():
        assert torch.equal(value, state[name]), name
    assert torch.equal(learner.token_prefix, prefix)  # rebuilt from the current class names


# ----- TextRefiner on each host: its losses against the plain computation ----------------------------
def _refiner_inputs(trainer, image):
    model, memory = trainer.model, trainer.memory
    global_feat, tokens, cls_attn = model.image_encoder(image, return_local=True)
    aligned = model.mid_image_trans(tokens)  # train mode: the same batch statistics as the step
    cache = memory.get_cache().clone()
    return normalise(global_feat), aligned, cls_attn, cache, memory.extractor.weight, memory.alpha


def test_refiner_losses_on_cocoop(tmp_path, pets_root, tiny_vit_path, clip_model):
    trainer = build("CoCoOp", pets_root, tiny_vit_path, str(tmp_path), host="CoCoOp")
    trainer.set_model_mode("train")
    batch = _batch(1)
    image, label = batch["img"], batch["label"]
    learner = trainer.model.prompt_learner
    with torch.no_grad():
        imf, aligned, cls_attn, cache, weight, alpha = _refiner_inputs(trainer, image)
        text = plain_cocoop_text(clip_model, learner, imf)  # [B, C, D]
        scale = clip_model.logit_scale.exp()
        terms = [plain_refiner_terms(scale, imf[i], text[i], plain_local(aligned[i], cls_attn[i]), label[i:i + 1],
                                     cache, weight, alpha) for i in range(len(label))]
        logits = torch.stack([t[0] for t in terms])
        semantic = torch.stack([t[1] for t in terms]).mean()  # the same number of local rows per image
        regularisation = torch.stack([t[2] for t in terms]).mean()  # averaged over the images
        expected = F.cross_entropy(logits, label) + semantic / 50.0 + 20.0 * regularisation
        loss, parts = trainer.losses(image, label)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-4)
    assert float(parts["global"]) == pytest.approx(F.cross_entropy(logits, label).item(), abs=1e-4)
    assert float(parts["local"]) == pytest.approx(semantic.item() / 50.0, abs=1e-5)
    assert float(parts["feature"]) == pytest.approx(20.0 * regularisation.item(), abs=1e-5)
    assert not torch.equal(trainer.memory.get_cache(), cache)  # written after the read

    # evaluation: per-image text refined per batch, as the training logits (no cache write)
    trainer.set_model_mode("eval")
    with torch.no_grad():
        trainer.before_evaluation("test")
        ours = trainer.model_inference(image)
        trainer.after_evaluation("test")
        imf = plain_image_features(clip_model, image)
        text = plain_cocoop_text(clip_model, learner, imf)
        cache = trainer.memory.get_cache()
        expected = torch.stack([scale * imf[i] @ plain_refine(text[i], cache, weight, alpha).t()
                                for i in range(len(label))])
    assert torch.allclose(ours, expected, atol=1e-4)


def test_refiner_losses_on_kgcoop(tmp_path, pets_root, tiny_vit_path, clip_model):
    trainer = build("KgCoOp", pets_root, tiny_vit_path, str(tmp_path), "TRAINER.COOP.W", "8.0", host="KgCoOp")
    trainer.set_model_mode("train")
    batch = _batch(2)
    image, label = batch["img"], batch["label"]
    with torch.no_grad():
        imf, aligned, cls_attn, cache, weight, alpha = _refiner_inputs(trainer, image)
        text = plain_coop_text(clip_model, trainer.model.prompt_learner)  # [C, D]
        clip_text = plain_clip_text(clip_model, trainer.dm.dataset.classnames, "a photo of a {}, a type of pet.")
        scale = clip_model.logit_scale.exp()
        terms = [plain_refiner_terms(scale, imf[i], text, plain_local(aligned[i], cls_attn[i]), label[i:i + 1],
                                     cache, weight, alpha) for i in range(len(label))]
        logits = torch.stack([t[0] for t in terms])
        semantic = torch.stack([t[1] for t in terms]).mean()
        regularisation = terms[0][2]  # the text is shared by the images
        kg = plain_kg(text, clip_text)
        expected = F.cross_entropy(logits, label) + semantic / 50.0 + 20.0 * regularisation + 8.0 * kg
        loss, parts = trainer.losses(image, label)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-4)
    assert float(parts["kg"]) == pytest.approx(8.0 * kg.item(), abs=1e-5)
