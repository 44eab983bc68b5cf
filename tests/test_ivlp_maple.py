"""IVLP and MaPLe against a straightforward recomputation (the reference's sequence-first blocks
with nn.MultiheadAttention), reference-layout checkpoints, and the local tokens at every depth."""

import pytest
import torch
import torch.nn.functional as F

import clip
from clip.model import add_ivlp_prompts
from tests import tiny_run
from tools.tiny_clip import tiny_clip_model

def _trainer(root, out, clip_path, trainer, config, *opts):
    return tiny_run.build(root, out, clip_path, trainer, config, "DATASET.SUBSAMPLE_CLASSES", "base", *opts,
                          shots=2, epochs=1)


# ----- the recomputation -------------------------------------------------------------------------
def _block(block, x, mask=None):
    """One block as the reference runs it: x [N, B, W] (sequence first)."""
    y = block.ln_1(x)
    x = x + block.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
    return x + block.mlp(block.ln_2(x))


def _text(model, embed, ctx, deep, ctx_words, classnames):
    """Text features [C, D]: "<ctx_words> <name>." with its first len(ctx) words replaced by ctx and
    positions 1..n replaced by deep[i-1] before blocks 1..len(deep)."""
    tokens = clip.tokenize([f"{ctx_words} {name.replace('_', ' ')}." for name in classnames])
    n = ctx.shape[0]
    x = embed(tokens)
    x = torch.cat([x[:, :1], ctx.expand(len(tokens), -1, -1), x[:, 1 + n:]], dim=1) + model.positional_embedding
    x = x.permute(1, 0, 2)  # [77, C, W]
    mask = torch.full((77, 77), float("-inf")).triu(1)
    for i, block in enumerate(model.transformer.resblocks):
        if 1 <= i <= len(deep):
            x = torch.cat([x[:1], deep[i - 1].unsqueeze(1).expand(-1, x.shape[1], -1), x[1 + n:]])
        x = _block(block, x, mask)
    x = model.ln_final(x.permute(1, 0, 2))
    return x[torch.arange(len(tokens)), tokens.argmax(-1)] @ model.text_projection


def _vision(visual, images, shallow, deep):
    """Image features [B, D] and the last block's image tokens [B, L, D] (prompts appended last)."""
    x = visual.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([visual.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + visual.positional_embedding
    length = x.shape[1]
    if shallow is not None:
        x = torch.cat([x, shallow.expand(x.shape[0], -1, -1)], dim=1)
    x = visual.ln_pre(x).permute(1, 0, 2)  # [L + n, B, W]
    for i, block in enumerate(visual.transformer.resblocks):
        if 1 <= i <= len(deep):
            x = torch.cat([x[: x.shape[0] - deep[i - 1].shape[0]], deep[i - 1].unsqueeze(1).expand(-1, x.shape[1], -1)])
        x = _block(block, x)
    x = x.permute(1, 0, 2)
    return visual.ln_post(x[:, 0]) @ visual.proj, visual.ln_post(x[:, :length]) @ visual.proj


def _logits(scale, image_features, text_features):
    return scale * F.normalize(image_features, dim=-1) @ F.normalize(text_features, dim=-1).t()


def _check_step(trainer, images, labels, loss_fn):
    """The trainer's loss and one SGD step (lr 0.5) equal those of ``loss_fn(params)``."""
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    expected = loss_fn()
    grads = torch.autograd.grad(expected, params)
    group = trainer.optim.param_groups[0]
    group["lr"] = 0.5
    summary = trainer.forward_backward({"img": images, "label": labels})
    assert summary["loss"] == pytest.approx(expected.item(), abs=1e-4)
    for p, p0, g in zip(params, before, grads):  # SGD's first step: the momentum buffer is the gradient
        torch.testing.assert_close(p.detach(), p0 - 0.5 * (g + group["weight_decay"] * p0), rtol=1e-4, atol=1e-4)
    return expected


def _batch():
    gen = torch.Generator().manual_seed(5)
    return torch.randn(4, 3, 32, 32, generator=gen), torch.tensor([0, 1, 2, 1])


def test_ivlp_matches_recomputation(tmp_path, pets_root, tiny_teacher_path):
    trainer = _trainer(pets_root, str(tmp_path / "ivlp"), tiny_teacher_path, "IVLP",
                       "IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "3",
                       "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PREC", "fp32")
    model, names = trainer.model, trainer.dm.dataset.classnames
    images, labels = _batch()
    vis, txt = model.image_encoder, model.text_encoder.transformer.resblocks
    embed = clip.load("ViT-B/16", path=tiny_teacher_path, device="cpu").token_embedding

    def recomputed():
        text = _text(model.text_encoder, embed, model.prompt_learner.ctx, [txt[1].VPT_shallow], "a photo of a", names)
        deep = [vis.transformer.resblocks[i].VPT_shallow for i in (1, 2)]
        image, _ = _vision(vis, images, vis.VPT, deep)
        return _logits(model.logit_scale.exp(), image, text)

    with torch.no_grad():
        torch.testing.assert_close(model(images), recomputed(), rtol=1e-4, atol=1e-4)
    expected = _check_step(trainer, images, labels, lambda: F.cross_entropy(recomputed(), labels))
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "image_encoder.VPT", "image_encoder.transformer.resblocks.1.VPT_shallow",
        "image_encoder.transformer.resblocks.2.VPT_shallow", "prompt_learner.ctx",
        "text_encoder.transformer.resblocks.1.VPT_shallow"]
    assert expected.item() > 0


def _maple(tmp_path, pets_root, clip_path, *opts):
    return _trainer(pets_root, str(tmp_path / "maple"), clip_path, "MaPLe", "MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml",
                    "TRAINER.MAPLE.PROMPT_DEPTH", "3", "TRAINER.MAPLE.PREC", "fp32", *opts)


def test_maple_matches_recomputation(tmp_path, pets_root, tiny_teacher_path):
    trainer = _maple(tmp_path, pets_root, tiny_teacher_path)
    model, names = trainer.model, trainer.dm.dataset.classnames
    pl = model.prompt_learner
    images, labels = _batch()
    embed = clip.load("ViT-B/16", path=tiny_teacher_path, device="cpu").token_embedding

    def recomputed():
        text = _text(model.text_encoder, embed, pl.ctx, list(pl.compound_prompts_text), "a photo of a", names)
        deep = [F.linear(t, layer.weight, layer.bias) for t, layer in zip(pl.compound_prompts_text,
                                                                         pl.compound_prompt_projections)]
        image, _ = _vision(model.image_encoder, images, pl.ctx @ pl.proj.weight.t() + pl.proj.bias, deep)
        return _logits(model.logit_scale.exp(), image, text)

    assert pl.ctx.shape == (2, 64) and pl.proj.weight.shape == (128, 64) and len(pl.compound_prompts_text) == 2
    # the projections start as copies of one layer, as the reference's clones
    assert torch.equal(pl.compound_prompt_projections[0].weight, pl.compound_prompt_projections[1].weight)
    with torch.no_grad():
        torch.testing.assert_close(model(images), recomputed(), rtol=1e-4, atol=1e-4)
    _check_step(trainer, images, labels, lambda: F.cross_entropy(recomputed(), labels))
    assert sorted(n for n, p in model.named_parameters() if p.requires_grad) == [
        "prompt_learner.compound_prompt_projections.0.bias", "prompt_learner.compound_prompt_projections.0.weight",
        "prompt_learner.compound_prompt_projections.1.bias", "prompt_learner.compound_prompt_projections.1.weight",
        "prompt_learner.compound_prompts_text.0", "prompt_learner.compound_prompts_text.1", "prompt_learner.ctx",
        "prompt_learner.proj.bias", "prompt_learner.proj.weight"]


@pytest.mark.parametrize("trainer_name, folder", [("MaPLe", "MultiModalPromptLearner"), ("IVLP", "VLPromptLearner")])
def test_reference_checkpoint_loads(tmp_path, pets_root, tiny_teacher_path, trainer_name, folder):
    """The reference saves the whole CustomCLIP (frozen CLIP and class-name buffers included)."""
    if trainer_name == "MaPLe":
        trainer = _maple(tmp_path, pets_root, tiny_teacher_path)
    else:
        trainer = _trainer(pets_root, str(tmp_path / "ivlp"), tiny_teacher_path, "IVLP",
                           "IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "3",
                           "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2")
    state = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    prompts = sorted(n for n, p in trainer.model.named_parameters() if p.requires_grad)
    for key in prompts:
        state[key] = torch.randn(state[key].shape, generator=gen)
    state["prompt_learner.token_prefix"] = torch.zeros(9, 1, 64)  # another class list: rebuilt, never loaded
    (tmp_path / "ref" / folder).mkdir(parents=True)
    torch.save({"state_dict": state, "epoch": 5, "optimizer": None, "scheduler": None},
               tmp_path / "ref" / folder / "model.pth.tar-5")
    trainer.load_model(str(tmp_path / "ref"), epoch=5)
    loaded = trainer.model.state_dict()
    for key in prompts:
        torch.testing.assert_close(loaded[key], state[key])
    assert loaded["prompt_learner.token_prefix"].shape == (3, 1, 64)
    registered = trainer.registered_models()[folder]
    saved = registered.keys.file_state(registered.module)["state_dict"]
    assert sorted(saved) == prompts  # ours: the prompts only, under the reference's names
    if trainer_name == "MaPLe":
        assert "prompt_learner.compound_prompt_projections.1.weight" in saved
    else:
        assert "text_encoder.transformer.resblocks.1.VPT_shallow" in saved


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_prompts_never_reach_the_local_tokens(depth):
    """At every vision depth (3 = blocks, 2 = blocks - 1) the local tokens are the image tokens only."""
    model = tiny_clip_model("vit", seed=4, vision_layers=3)
    add_ivlp_prompts(model, vision_ctx=2, vision_depth=depth, text_ctx=2, text_depth=1)
    visual = model.visual
    images, _ = _batch()
    with torch.no_grad():
        if depth:  # prompts far from the image tokens: any leak would show
            for name, p in visual.named_parameters():
                if "VPT" in name:
                    p.normal_(std=5.0)
        global_feat, tokens, cls_attn = visual(images, return_local=True)
        vpt = getattr(visual, "VPT", None)
        deep = [visual.transformer.resblocks[i].VPT_shallow for i in range(1, depth)]
        expected_global, expected_tokens = _vision(visual, images, vpt, deep)
    assert tokens.shape == (4, 17, 32) and cls_attn.shape == (4, 16)
    torch.testing.assert_close(tokens, expected_tokens, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(global_feat, expected_global, rtol=1e-4, atol=1e-4)
