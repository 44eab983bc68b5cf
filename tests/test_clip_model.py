"""CLIP model: architecture inference, fused attention against nn.MultiheadAttention, local tokens."""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import clip
from clip.model import (
    ModifiedResNet,
    VisionTransformer,
    add_ivlp_prompts,
    build_model,
    convert_weights,
    encode_text_embeddings,
    encode_text_shared_prefix,
)
from tools.tiny_clip import tiny_clip_model, tiny_clip_state_dict

TEXTS = ["a photo of a dog.", "a photo of a Bengal cat, a type of pet.", "x"]


def _images(size=32, n=2, seed=1):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _reference_blocks(transformer, x, mask=None):
    """OpenAI's computation: sequence-first tokens through nn.MultiheadAttention; returns the
    output and the last block's head-averaged attention weights."""
    x = x.permute(1, 0, 2)  # [N, B, W]
    weights = None
    for block in transformer.resblocks:
        y = block.ln_1(x)
        attn_out, weights = block.attn(y, y, y, need_weights=True, attn_mask=mask)
        x = x + attn_out
        x = x + block.mlp(block.ln_2(x))
    return x.permute(1, 0, 2), weights  # [B, N, W], [B, N, N]


def _reference_vit_embedding(visual, images):
    """Patch and class embeddings, positions and ln_pre: [B, 3, H, W] -> [B, 1 + g*g, width]."""
    x = visual.conv1(images).flatten(2).transpose(1, 2)  # [B, g*g, width]
    cls = visual.class_embedding.expand(x.shape[0], 1, -1)
    return visual.ln_pre(torch.cat([cls, x], dim=1) + visual.positional_embedding)


def _reference_text(model, tokens):
    """Full 77-token text encoding with an explicit causal mask, as OpenAI's encode_text."""
    n = tokens.shape[1]
    mask = torch.full((n, n), float("-inf")).triu(1)
    x = model.token_embedding(tokens) + model.positional_embedding
    x, _ = _reference_blocks(model.transformer, x, mask)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)] @ model.text_projection


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_build_model_infers_architecture(kind):
    state = tiny_clip_state_dict(kind, seed=3)
    model = build_model(state)
    assert not model.training
    assert set(model.state_dict()) == set(state)
    for key, value in model.state_dict().items():
        assert value.shape == state[key].shape and torch.equal(value, state[key]), key
    assert model.dtype == torch.float32
    assert model.visual.input_resolution == 32 and model.visual.output_dim == 32
    assert isinstance(model.visual, VisionTransformer if kind == "vit" else ModifiedResNet)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    with torch.no_grad():
        assert model.encode_image(_images()).shape == (2, 32)
        assert model.encode_text(clip.tokenize(TEXTS)).shape == (3, 32)


def test_build_model_reads_torchscript_extras_and_casts_to_fp32():
    state = {k: v.half() if v.is_floating_point() else v for k, v in tiny_clip_state_dict("vit").items()}
    state.update(input_resolution=torch.tensor(32), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    model = build_model(state)
    assert model.dtype == torch.float32 and model.positional_embedding.dtype == torch.float32


def test_tiny_clip_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b, c = (tiny_clip_state_dict("vit", seed=s) for s in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["visual.proj"], c["visual.proj"])
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny_clip_state_dict("resnet", image_size=40)
    with pytest.raises(ValueError, match="vgg"):
        tiny_clip_state_dict("vgg")


def test_vit_fused_attention_and_local_tokens_match_multihead_attention():
    # width 128 gives 2 heads, so the head averaging of the CLS row is exercised
    model = tiny_clip_model("vit", seed=0, vision_width=128)
    visual = model.visual
    images = _images()
    with torch.no_grad():
        default = visual(images)
        global_feat, tokens, cls_attn = visual(images, return_local=True)
        ref_x, ref_weights = _reference_blocks(visual.transformer, _reference_vit_embedding(visual, images))
        ref_tokens = visual.ln_post(ref_x) @ visual.proj
    n_tokens = (32 // 8) ** 2 + 1
    assert tokens.shape == (2, n_tokens, 32) and cls_attn.shape == (2, n_tokens - 1)
    torch.testing.assert_close(global_feat, default)
    assert torch.equal(tokens[:, 0], global_feat)
    torch.testing.assert_close(tokens, ref_tokens, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(cls_attn, ref_weights[:, 0, 1:], atol=1e-6, rtol=1e-5)
    # the CLS row over all keys sums to one; dropping the CLS key leaves less
    assert (cls_attn.sum(-1) < 1).all() and (cls_attn > 0).all()
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(images, return_local=True)[1], tokens)


def test_resnet_attention_pool_matches_openai_formula():
    model = tiny_clip_model("resnet", seed=0)
    pool = model.visual.attnpool
    feats = torch.randn(2, pool.k_proj.in_features, 1, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = pool(feats)
        x = feats.flatten(2).permute(2, 0, 1)  # [HW, B, C]
        x = torch.cat([x.mean(dim=0, keepdim=True), x]) + pool.positional_embedding[:, None]
        ref, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=pool.num_heads,
            q_proj_weight=pool.q_proj.weight, k_proj_weight=pool.k_proj.weight, v_proj_weight=pool.v_proj.weight,
            in_proj_weight=None, in_proj_bias=torch.cat([pool.q_proj.bias, pool.k_proj.bias, pool.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=pool.c_proj.weight, out_proj_bias=pool.c_proj.bias,
            use_separate_proj_weight=True, training=False, need_weights=False,
        )
    torch.testing.assert_close(out, ref[0], atol=1e-5, rtol=1e-4)


def test_resnet_refuses_local_tokens():
    model = tiny_clip_model("resnet")
    with pytest.raises(ValueError, match="local tokens need a ViT backbone"):
        model.encode_image(_images(), return_local=True)


def test_truncated_text_encoding_equals_full_length():
    model = tiny_clip_model("vit", seed=2)
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        fast = model.encode_text(tokens)
        ref = _reference_text(model, tokens)
        # a text module holding only the parts encode_text_embeddings needs gives the same
        parts = SimpleNamespace(
            transformer=model.transformer, positional_embedding=model.positional_embedding,
            ln_final=model.ln_final, text_projection=model.text_projection, dtype=model.dtype,
        )
        via_parts = encode_text_embeddings(parts, model.token_embedding(tokens), tokens)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(via_parts, fast)
    # each text's feature does not depend on the longest text in its batch
    torch.testing.assert_close(fast[:1], model.encode_text(tokens[:1]).detach(), atol=1e-5, rtol=1e-4)


def test_convert_weights_fp16_like_openai():
    model = tiny_clip_model("vit", seed=0)
    images, tokens = _images(), clip.tokenize(TEXTS)
    with torch.no_grad():
        image32, text32 = model.encode_image(images), model.encode_text(tokens)
        convert_weights(model)
        assert model.dtype == torch.float16
        block = model.visual.transformer.resblocks[0]
        assert block.attn.in_proj_weight.dtype == torch.float16
        assert block.attn.out_proj.weight.dtype == torch.float16
        assert model.text_projection.dtype == torch.float16 and model.visual.proj.dtype == torch.float16
        assert block.ln_1.weight.dtype == torch.float32  # norms and embeddings stay fp32, as OpenAI's
        assert model.token_embedding.weight.dtype == torch.float32
        try:
            image16, text16 = model.encode_image(images), model.encode_text(tokens)
            _, local16, attn16 = model.encode_image(images, return_local=True)
        except RuntimeError as e:  # older torch builds lack some half kernels on CPU
            if "Half" not in str(e):
                raise
            pytest.skip(f"this torch cannot run fp16 on CPU: {e}")
    assert image16.dtype == text16.dtype == local16.dtype == attn16.dtype == torch.float16
    torch.testing.assert_close(image16.float(), image32, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(text16.float(), text32, atol=1e-2, rtol=1e-2)


def test_build_model_infers_non_default_sizes_and_heads():
    from clip.model import CLIP

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vit = CLIP(48, 64, 3, 192, 16, 77, 49408, 128, 2, 1)  # ViT 3 layers, width 192, patch 16, image 64
        resnet = CLIP(24, 64, (1, 2, 1, 1), 16, None, 77, 49408, 64, 1, 1)
    model = build_model(vit.state_dict())
    assert model.visual.conv1.kernel_size == (16, 16) and model.visual.input_resolution == 64
    assert len(model.visual.transformer.resblocks) == 3 and model.visual.output_dim == 48
    assert model.visual.transformer.resblocks[0].attn.num_heads == 3  # width // 64
    assert model.transformer.resblocks[0].attn.num_heads == 2 and len(model.transformer.resblocks) == 1
    assert model.context_length == 77 and model.vocab_size == 49408
    model = build_model(resnet.state_dict())
    assert [len(model.visual.layer1), len(model.visual.layer2)] == [1, 2]
    assert model.visual.attnpool.num_heads == 8 and model.visual.input_resolution == 64  # width * 32 // 64
    assert model.visual.output_dim == 24


def test_build_model_rejects_a_non_clip_state_dict():
    with pytest.raises(ValueError, match="missing token_embedding.weight.*visual.proj"):
        build_model({"weight": torch.zeros(2)})


def test_wrong_image_size_is_reported():
    model = tiny_clip_model("vit")
    with pytest.raises(ValueError, match=r"\[B, 3, 32, 32\], got \[2, 3, 48, 48\].*INPUT.SIZE"):
        model.encode_image(_images(size=48))


def test_text_sequence_is_cut_after_the_last_eot():
    model = tiny_clip_model("vit", seed=2)
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        embeddings = model.token_embedding(tokens)
        before = encode_text_embeddings(model, embeddings, tokens)
        embeddings[:, int(tokens.argmax(-1).max()) + 1 :] = 1e3  # whatever follows the last EOT is never read
        after = encode_text_embeddings(model, embeddings, tokens)
    assert int(tokens.argmax(-1).max()) + 1 < 77
    assert torch.equal(before, after)


def _run_blocks(blocks, x, causal=False, prompts=None, start=None):
    """The blocks one by one, with prompts[i] written over x[:, start:start+n] before block i >= 1."""
    for i, block in enumerate(blocks):
        if prompts is not None and i >= 1 and i - 1 < len(prompts):
            p = prompts[i - 1].expand(x.shape[0], -1, -1)
            s = start % x.shape[1]
            x = torch.cat([x[:, :s], p, x[:, s + p.shape[1] :]], dim=1)
        x = block(x, causal, use_prompts=False)
    return x


def test_vision_deep_prompts_follow_ivlp():
    model = tiny_clip_model("vit", seed=0)
    visual = model.visual
    images = _images()
    with torch.no_grad():
        plain = visual(images)
        add_ivlp_prompts(model, vision_ctx=3, vision_depth=2, text_ctx=2, text_depth=1)
        names = sorted(n for n, _ in model.named_parameters() if "VPT" in n)
        assert names == ["visual.VPT", "visual.transformer.resblocks.1.VPT_shallow"]
        assert visual.VPT.shape == (3, 128)
        # prompts appended after CLS + patches (no positional embedding), replaced at block 1
        x = visual.embed(images)  # [B, 17, 128]
        x = visual.ln_pre(torch.cat([x, visual.VPT.expand(x.shape[0], -1, -1)], dim=1))  # [B, 20, 128]
        shallow = [visual.transformer.resblocks[1].VPT_shallow]
        x = _run_blocks(visual.transformer.resblocks, x, prompts=shallow, start=-3)
        expected = visual.ln_post(x[:, 0]) @ visual.proj
        prompted = visual(images)
        torch.testing.assert_close(prompted, expected)
        assert not torch.allclose(prompted, plain)
        torch.testing.assert_close(visual(images, use_prompts=False), plain)
        # local tokens leave the prompts out; the CLS row covers the 16 patches
        global_feat, tokens, cls_attn = visual(images, return_local=True)
    assert tokens.shape == (2, 17, visual.output_dim) and cls_attn.shape == (2, 16)
    torch.testing.assert_close(global_feat, prompted)
    torch.testing.assert_close(cls_attn.sum(-1) < 1, torch.ones(2, dtype=torch.bool))  # prompts share the softmax


def test_text_deep_prompts_replace_the_context_positions():
    model = tiny_clip_model("vit", seed=1)
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        add_ivlp_prompts(model, vision_ctx=2, vision_depth=0, text_ctx=2, text_depth=2)
        assert not hasattr(model.visual, "VPT")
        embeddings = model.token_embedding(tokens)  # [C, 77, 128]
        got = encode_text_embeddings(model, embeddings, tokens)
        x = embeddings + model.positional_embedding
        shallow = [model.transformer.resblocks[1].VPT_shallow]
        x = model.ln_final(_run_blocks(model.transformer.resblocks, x, causal=True, prompts=shallow, start=1))
        expected = x[torch.arange(len(TEXTS)), tokens.argmax(-1)] @ model.text_projection
        torch.testing.assert_close(got, expected)
        # the shared-prefix path applies the same prompts inside the prefix (SOS + 2 tokens)
        tokens, embeddings = tokens[:2], embeddings[:2]  # "x" ends inside the prefix
        same = [embeddings[0:1, :3].expand(2, -1, -1), embeddings[:, 3:]]
        shared = encode_text_shared_prefix(model, embeddings[0, :3], embeddings[:, 3:], tokens)
        torch.testing.assert_close(shared, encode_text_embeddings(model, torch.cat(same, 1), tokens))
        with pytest.raises(ValueError, match="end after the 3 shared prefix tokens"):
            encode_text_shared_prefix(model, embeddings[0, :3], embeddings[:, 3:], clip.tokenize(["x", "y"]))


def test_prompt_depth_is_checked():
    model = tiny_clip_model("vit", seed=0)
    with pytest.raises(ValueError, match="text prompt depth of at least 1"):
        add_ivlp_prompts(model, 2, 2, 2, 0)
    with pytest.raises(ValueError, match=r"Prompt depth 5 must lie in \[0, 2\]"):
        add_ivlp_prompts(model, 2, 5, 2, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 attention kernels need CUDA")
def test_fp16_on_cuda_matches_fp32():
    device = torch.device("cuda")
    model = tiny_clip_model("vit", seed=0).to(device)
    images, tokens = _images().to(device), clip.tokenize(TEXTS).to(device)
    with torch.no_grad():
        ref = model.encode_image(images, return_local=True), model.encode_text(tokens)
        convert_weights(model)
        half = model.encode_image(images, return_local=True), model.encode_text(tokens)
    for got, want in zip([*half[0], half[1]], [*ref[0], ref[1]]):
        assert got.dtype == torch.float16
        torch.testing.assert_close(got.float(), want, atol=1e-2, rtol=1e-2)
