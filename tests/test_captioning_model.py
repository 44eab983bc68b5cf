"""The ClipCap / CapDec captioner: mapper and tiny-OPT shapes, the token CE against a recomputation,
the reference's checkpoint layout."""
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from tta.captioning.mapper import TransformerMapper
from tta.captioning.model import load_weights
from tests.captioning_fixtures import CLIP_DIM, tiny_captioner, tiny_opt_folder  # noqa: F401


def reference_mapper(mapper, x):
    """The mapper written out: einsum attention over [clip tokens, prefix tokens], outputs at the prefix."""
    b = x.shape[0]
    h = torch.cat([mapper.linear(x).view(b, mapper.clip_length, -1), mapper.prefix_const.expand(b, -1, -1)], dim=1)
    for layer in mapper.transformer.layers:
        attn, n_heads = layer.attn, layer.attn.heads
        y = layer.norm1(h)
        n, c = y.shape[1], y.shape[2]
        q = attn.to_queries(y).reshape(b, n, n_heads, c // n_heads)
        kv = attn.to_keys_values(y).reshape(b, n, 2, n_heads, c // n_heads)
        scores = torch.einsum("bnhd,bmhd->bnmh", q, kv[:, :, 0]) * (c // n_heads) ** -0.5
        out = torch.einsum("bnmh,bmhd->bnhd", scores.softmax(dim=2), kv[:, :, 1]).reshape(b, n, c)
        h = h + attn.project(out)
        y = layer.norm2(h)
        h = h + layer.mlp.fc2(torch.relu(layer.mlp.fc1(y)))
    return h[:, mapper.clip_length:]


def test_reference_size_layout():
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in TransformerMapper().state_dict().items()}
    assert len(shapes) == 99
    assert shapes["prefix_const"] == (40, 768) and shapes["linear.weight"] == (30720, 512)
    assert shapes["transformer.layers.7.attn.to_queries.weight"] == (768, 768)
    assert shapes["transformer.layers.7.attn.to_keys_values.weight"] == (1536, 768)
    assert "transformer.layers.0.attn.to_queries.bias" not in shapes and "transformer.layers.0.attn.project.bias" in shapes
    assert shapes["transformer.layers.0.mlp.fc1.weight"] == (1536, 768)


def test_forward_shapes_and_mapper(tiny_opt_folder):
    captioner, tokenizer = tiny_captioner(tiny_opt_folder)
    x = torch.randn(3, CLIP_DIM)
    prefix = captioner.prefix(x)
    assert prefix.shape == (3, 4, 32)
    torch.testing.assert_close(prefix, reference_mapper(captioner.clip_project, x), rtol=1e-5, atol=1e-5)
    enc = tokenizer(["a red circle.", "a blue heart on the left", "a star"], return_tensors="pt", padding=True)
    logits = captioner.logits(prefix, enc.input_ids, enc.attention_mask)
    assert logits.shape == (3, enc.input_ids.shape[1], len(tokenizer))


def test_token_ce_equals_recomputation(tiny_opt_folder):
    captioner, tokenizer = tiny_captioner(tiny_opt_folder)
    x = torch.randn(2, CLIP_DIM)
    enc = tokenizer(["a red circle on the left.", "a star"], return_tensors="pt", padding=True)
    tokens, mask = enc.input_ids, enc.attention_mask
    assert tokens[0, 0] == 2 and (tokens[1][mask[1] == 0] == tokenizer.pad_token_id).all()
    ce = captioner.token_ce(captioner.prefix(x), tokens, mask)
    for i in range(2):  # each caption alone, unpadded, position by position
        n = int(mask[i].sum())
        embeds = torch.cat([captioner.prefix(x[i : i + 1]), captioner.llm.get_input_embeddings()(tokens[i : i + 1, :n])], dim=1)
        log_probs = captioner.llm(inputs_embeds=embeds).logits.log_softmax(dim=-1)[0]
        expected = torch.stack([-log_probs[4 - 1 + t, tokens[i, t]] for t in range(n)])
        torch.testing.assert_close(ce[i, :n], expected, rtol=1e-4, atol=1e-5)
        assert (ce[i, n:] == 0).all()


def test_only_the_mapper_trains(tiny_opt_folder):
    captioner, tokenizer = tiny_captioner(tiny_opt_folder)
    captioner.train()
    assert not captioner.llm.training and captioner.clip_project.training
    assert all(not p.requires_grad for p in captioner.llm.parameters())
    enc = tokenizer(["a red circle."], return_tensors="pt")
    captioner.token_ce(captioner.prefix(torch.randn(1, CLIP_DIM)), enc.input_ids, enc.attention_mask).sum().backward()
    assert all(p.grad is None for p in captioner.llm.parameters())
    assert all(p.grad is not None for p in captioner.clip_project.parameters())


def test_reference_checkpoint_layout_loads(tiny_opt_folder, tmp_path):
    """{'epoch', 'state_dict': clip_project.* fp32 + llm.llm.* fp16, 'optimizer', 'scheduler'}, as train.py saves it."""
    source, _ = tiny_captioner(tiny_opt_folder, seed=1)
    state = {"clip_project." + k: v for k, v in source.clip_project.state_dict().items()}
    state.update({"llm.llm." + k: (v + 0.5).half() for k, v in source.llm.state_dict().items()})
    optimizer = torch.optim.AdamW(source.clip_project.parameters(), lr=2e-5, eps=1e-6, weight_decay=0.0)
    path = tmp_path / "ckpt-latest.pt"
    torch.save({"epoch": 10, "state_dict": state, "optimizer": optimizer.state_dict(), "scheduler": {"last_epoch": 5}}, path)
    target, _ = tiny_captioner(tiny_opt_folder, seed=2)
    load_weights(target, str(path))
    for k, v in target.clip_project.state_dict().items():
        assert torch.equal(v, state["clip_project." + k])
    for k, v in target.llm.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, state["llm.llm." + k].float())


def test_own_mapper_file_loads_and_mismatch_is_named(tiny_opt_folder, tmp_path):
    source, _ = tiny_captioner(tiny_opt_folder, seed=1)
    path = str(tmp_path / "mapper.safetensors")
    save_file(source.mapper_state(), path)
    target, _ = tiny_captioner(tiny_opt_folder, seed=2)
    load_weights(target, path)
    assert all(torch.equal(a, b) for a, b in zip(target.clip_project.state_dict().values(), source.clip_project.state_dict().values()))
    bad = dict(source.mapper_state())
    bad["clip_project.prefix_const"] = torch.zeros(8, 32)
    save_file(bad, path)
    with pytest.raises(ValueError, match=r"mapper weights .* do not fit .*prefix_const \(8, 32\) vs \(4, 32\).*--prefix_length"):
        load_weights(target, path)
    save_file({"model.decoder.x": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="holds no mapper weights"):
        load_weights(target, path)
    with pytest.raises(FileNotFoundError, match="--checkpoint"):
        load_weights(target, str(tmp_path / "none.pt"))


def test_missing_language_model_is_one_clear_error(tmp_path):
    from tta.captioning.model import load_language_model

    with pytest.raises(FileNotFoundError, match=r'--llm ".*nothing" is neither a folder'):
        load_language_model(str(tmp_path / "nothing"))
