"""TextRefiner parts (alignment, local features, local cache, losses, head) against a plain
step-by-step implementation of the reference's computation written out below."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainers.shared.alignment import FeatureAlignment
from trainers.shared.distillation import kd_loss
from trainers.textrefiner.cache import LocalCache
from trainers.textrefiner.local_features import num_local_features, select_local_features
from trainers.textrefiner.losses import (
    coop_total,
    promptkd_total,
    regularisation_loss,
    semantic_kd_loss,
    semantic_loss,
)
from trainers.textrefiner.refiner import TextRefinerHead

M, L, C = 25, 17, 6  # cache entries, tokens per image (CLS + 16 patches), classes


# ----- the reference's computation, written out plainly -----------------------------------------
class PlainMemory:
    """Cache read / aggregation / write as the reference does them: a loop over the entries."""

    def __init__(self, cache, weight, alpha=0.2, momentum=0.8):
        self.cache, self.weight, self.alpha, self.momentum = cache.clone(), weight, alpha, momentum
        self.unassigned = []  # per write: how many entries got no token

    def read(self, q):
        q = F.normalize(q, dim=-1)
        cache = self.cache.detach()
        probs = F.softmax(q @ cache.t(), dim=1)
        return probs @ cache

    def write(self, z):
        y = F.normalize(z.detach().reshape(-1, z.shape[-1]), dim=-1)
        scores = y @ self.cache.t()
        q_tokens = F.softmax(scores, dim=0)
        _, top1 = torch.topk(F.softmax(scores, dim=1), 1, dim=1)
        new = self.cache.clone()
        empty = 0
        for j in range(self.cache.shape[0]):
            rows = torch.nonzero(top1.squeeze(1) == j)
            if rows.shape[0] == 0:
                empty += 1
                continue
            w = q_tokens[rows, j] / torch.max(q_tokens[:, j])  # [a, 1]
            new[j] = self.momentum * self.cache[j] + (1 - self.momentum) * torch.sum(w * y[rows.squeeze(1)], dim=0)
        self.unassigned.append(empty)
        self.cache = F.normalize(new, dim=-1)

    def __call__(self, t, z):
        r = self.read(t)
        refined = self.alpha * (torch.cat((t, r), dim=-1) @ self.weight.t()) + t
        self.write(z)
        return refined, F.l1_loss(F.normalize(refined, dim=-1), t, reduction="mean")


def plain_local(z, attn, k=5):
    b, _, d = z.shape
    _, idx = torch.topk(attn, k=k, dim=-1)
    idx = torch.cat((torch.zeros(b, 1, dtype=torch.int64), idx + 1), dim=1)
    picked = torch.gather(z, dim=1, index=idx.unsqueeze(-1).expand(b, k + 1, d))
    return torch.cat((picked, z.mean(dim=1, keepdim=True)), dim=1).reshape(-1, d)


def plain_step(align, memory, ctx, base, tokens, attn, image, labels, scale=100.0):
    """The reference's CoOp-variant training step: (logits, total, global, local/50, feature*20)."""
    b, length, d = tokens.shape
    text = F.normalize(base + ctx.sum(0), dim=-1)
    z = align(tokens.reshape(-1, d).unsqueeze(-1).unsqueeze(-1)).squeeze(-1).squeeze(-1).reshape(b, length, -1)
    local = plain_local(z, attn)
    refined, reg = memory(text, z)
    logits = scale * image @ refined.t()
    loss1 = F.cross_entropy(logits, labels)
    loss2 = F.cross_entropy(scale * local @ text.t(), labels.repeat_interleave(7))
    return logits, loss1 + loss2 / 50 + reg * 20, loss1, loss2 / 50, reg * 20, refined, local


# ----- helpers --------------------------------------------------------------------------------
def close(actual, expected, rtol=1e-5):
    # relative to the tensor's scale, so near-zero components do not dominate
    atol = rtol * float(expected.detach().abs().max()) + 1e-30
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def inputs(b, d, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, L, d, generator=g, dtype=dtype)
    attn = torch.rand(b, L - 1, generator=g, dtype=dtype).softmax(-1)
    image = F.normalize(torch.randn(b, d, generator=g, dtype=dtype), dim=-1)
    labels = torch.randint(0, C, (b,), generator=g)
    return tokens, attn, image, labels


# ----- the whole step against the plain computation ---------------------------------------------
@pytest.mark.parametrize(
    "b,d,m,dtype",
    [(3, 16, M, torch.float64), (3, 16, 5, torch.float64), (2, 32, M, torch.float64), (3, 16, M, torch.float32)],
)
def test_training_steps_match_reference_computation(b, d, m, dtype):
    torch.manual_seed(0)
    align = FeatureAlignment(d, d).to(dtype)
    cache = LocalCache(d, m).to(dtype)
    head = TextRefinerHead(align, cache)
    plain_align = copy.deepcopy(align.conv1)  # same layers, same BN state
    plain_w = cache.extractor.weight.detach().clone().requires_grad_()
    memory = PlainMemory(cache.get_cache(), plain_w)
    ctx = torch.randn(4, d, dtype=dtype, requires_grad=True)
    plain_ctx = ctx.detach().clone().requires_grad_()
    base = torch.randn(C, d, dtype=dtype)

    for step_seed in range(4):  # each step reads the cache the previous one wrote
        tokens, attn, image, labels = inputs(b, d, dtype, step_seed)
        for p in (ctx, plain_ctx, plain_w, *align.parameters(), *cache.parameters(), *plain_align.parameters()):
            p.grad = None
        text = F.normalize(base + ctx.sum(0), dim=-1)
        step = head.forward_train(text, tokens, attn)
        logits, total, parts = head.coop_losses(step, image, text, labels, 100.0)
        total.backward()
        p_logits, p_total, p_global, p_local, p_feature, p_refined, p_local_feats = plain_step(
            plain_align, memory, plain_ctx, base, tokens, attn, image, labels
        )
        p_total.backward()

        close(step.refined, p_refined)
        close(step.local, p_local_feats)
        close(logits, p_logits)
        close(total, p_total)
        for name, value in (("global", p_global), ("local", p_local), ("feature", p_feature)):
            close(parts[name], value.detach())
        close(cache.get_cache(), memory.cache)
        close(ctx.grad, plain_ctx.grad)
        close(cache.extractor.weight.grad, plain_w.grad)
        for (name, ours), theirs in zip(align.conv1.named_parameters(), plain_align.parameters()):
            assert ours.grad is not None and ours.grad.abs().sum() > 0, name
            close(ours.grad, theirs.grad)
        close(align.conv1[1].running_var, plain_align[1].running_var)
    if m == M:
        assert max(memory.unassigned) > 0  # some writes left entries without a token
    assert torch.allclose(cache.get_cache().norm(dim=-1), torch.ones(m, dtype=dtype))


def test_alignment_gets_gradient_only_from_the_local_loss():
    torch.manual_seed(1)
    align, cache = FeatureAlignment(16, 16).double(), LocalCache(16, M).double()
    head = TextRefinerHead(align, cache)
    tokens, attn, image, labels = inputs(2, 16, torch.float64, 3)
    text = F.normalize(torch.randn(C, 16, dtype=torch.float64), dim=-1)
    step = head.forward_train(text, tokens, attn)
    _, _, parts = head.coop_losses(step, image, text, labels, 100.0)
    (F.cross_entropy(100 * image @ step.refined.t(), labels) + step.regularisation).backward()
    assert all(p.grad is None for p in align.parameters())  # neither global nor regularisation reaches it
    assert cache.extractor.weight.grad.abs().sum() > 0
    assert set(parts) == {"global", "local", "feature"} and all(not v.requires_grad for v in parts.values())


# ----- local cache ------------------------------------------------------------------------------
@pytest.mark.parametrize("b,d,m", [(3, 16, M), (3, 16, 5), (2, 32, M)])
def test_writes_match_the_entry_loop(b, d, m):
    torch.manual_seed(2)
    cache = LocalCache(d, m).double()
    plain = PlainMemory(cache.get_cache(), None)
    for seed in range(5):
        tokens = inputs(b, d, torch.float64, 10 + seed)[0]
        if seed % 2:
            tokens = tokens.reshape(-1, d)  # [N, D] is accepted as well as [B, L, D]
        cache.write(tokens)
        plain.write(tokens)
        close(cache.get_cache(), plain.cache, rtol=1e-12)
    if m == M:
        assert min(plain.unassigned) > 0  # 34..51 tokens never cover all 25 entries here


def test_write_inside_no_grad_matches_write_outside():
    torch.manual_seed(12)
    cache = LocalCache(16, M).double()
    other = copy.deepcopy(cache)
    tokens = inputs(3, 16, torch.float64, 20)[0].requires_grad_()
    cache.write(tokens)
    with torch.no_grad():
        other.write(tokens)
    torch.testing.assert_close(other.get_cache(), cache.get_cache(), rtol=0, atol=0)
    assert tokens.grad is None and not cache.get_cache().requires_grad


@pytest.mark.parametrize("momentum", [0.8, 0.0])
def test_entries_without_tokens_keep_their_value(momentum):
    torch.manual_seed(3)
    cache = LocalCache(16, M, momentum=momentum).double()
    cache.set_cache(F.normalize(cache.get_cache(), dim=-1))  # unit rows in float64: renormalising keeps them
    before = cache.get_cache().clone()
    tokens = before[4] + 0.01 * torch.randn(2, L, 16, dtype=torch.float64)  # all nearest to entry 4
    cache.write(tokens)
    after = cache.get_cache()
    others = torch.arange(M) != 4
    torch.testing.assert_close(after[others], before[others], rtol=0, atol=1e-15)
    assert not torch.allclose(after[4], before[4])
    plain = PlainMemory(before, None, momentum=momentum)
    plain.write(tokens)
    close(after, plain.cache, rtol=1e-12)


def test_write_leaves_no_graph_and_ignores_autocast():
    torch.manual_seed(4)
    align, cache = FeatureAlignment(16, 16), LocalCache(16, M)
    copy_cache = copy.deepcopy(cache)
    tokens = align(torch.randn(2, L, 16))
    assert tokens.requires_grad
    cache.write(tokens)
    assert not cache.get_cache().requires_grad and cache.get_cache().grad_fn is None
    torch.testing.assert_close(cache.get_cache().norm(dim=-1), torch.ones(M))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        copy_cache.write(tokens)
    assert copy_cache.get_cache().dtype == torch.float32
    torch.testing.assert_close(copy_cache.get_cache(), cache.get_cache(), rtol=0, atol=0)


def test_read_gradient_reaches_the_query_not_the_cache():
    torch.manual_seed(5)
    cache = LocalCache(16, M).double()
    cache.get_cache().requires_grad_()  # even a cache that asks for gradients gets none
    query = torch.randn(C, 16, dtype=torch.float64, requires_grad=True)
    cache.read(query).sum().backward()
    assert cache.get_cache().grad is None
    assert query.grad.abs().sum() > 0


def test_refined_text_is_alpha_weighted_extractor_of_text_and_read():
    torch.manual_seed(6)
    cache = LocalCache(16, M, alpha=0.3).double()
    text = F.normalize(torch.randn(C, 16, dtype=torch.float64), dim=-1)
    read = PlainMemory(cache.get_cache(), None).read(text)
    close(cache.read(text), read, rtol=1e-12)
    expected = 0.3 * torch.cat([text, read], -1) @ cache.extractor.weight.t() + text
    close(cache.refine(text), expected, rtol=1e-12)


def test_state_dict_buffer_and_set_cache():
    cache = LocalCache(16, M)
    assert set(cache.state_dict()) == {"extractor.weight"}
    assert cache.extractor.bias is None and tuple(cache.extractor.weight.shape) == (16, 32)
    cache.to(torch.float64)
    assert cache.get_cache().dtype == torch.float64 and "text_fine_cache" not in cache.state_dict()
    cache.half()
    assert cache.get_cache().dtype == torch.float16
    cache.float()
    saved = F.normalize(torch.rand(M, 16), dim=-1).half().requires_grad_()  # as the reference saves it
    cache.set_cache(saved)
    assert cache.get_cache().dtype == torch.float32 and not cache.get_cache().requires_grad
    assert torch.equal(cache.get_cache(), saved.detach().float())
    with pytest.raises(ValueError, match=r"shape \(24, 16\).*\(25, 16\).*MEMORY_SIZE"):
        cache.set_cache(torch.rand(24, 16))
    with pytest.raises(TypeError, match="floating-point tensor"):
        cache.set_cache(torch.ones(M, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="cache width 16"):
        cache.read(torch.rand(3, 8))
    with pytest.raises(ValueError, match="MEMORY_SIZE must be a positive integer"):
        LocalCache(16, 0)
    with pytest.raises(ValueError, match=r"MOMENTUM must lie in \[0, 1\]"):
        LocalCache(16, M, momentum=1.5)


def test_seeded_construction_draws_the_reference_initial_cache():
    torch.manual_seed(11)
    cache = LocalCache(16, M)
    torch.manual_seed(11)
    expected = F.normalize(torch.rand(M, 16), dim=-1)
    extractor = nn.Linear(32, 16, bias=False)  # drawn after the cache, as the reference
    assert torch.equal(cache.get_cache(), expected)
    assert torch.equal(cache.extractor.weight, extractor.weight)
    assert (cache.get_cache() > 0).all()


# ----- feature alignment ------------------------------------------------------------------------
def test_alignment_names_and_parameter_count():
    align = FeatureAlignment(512, 512)
    assert set(align.state_dict()) == {
        "conv1.0.weight", "conv1.0.bias", "conv1.1.weight", "conv1.1.bias", "conv1.1.running_mean",
        "conv1.1.running_var", "conv1.1.num_batches_tracked", "conv1.3.weight", "conv1.3.bias",
    }
    assert sum(p.numel() for p in align.parameters()) == 526_336


def test_alignment_is_a_per_token_mlp_with_batch_statistics_over_all_tokens():
    torch.manual_seed(7)
    align = FeatureAlignment(16, 24).double()
    tokens = torch.randn(3, L, 16, dtype=torch.float64)
    out = align(tokens)
    assert out.shape == (3, L, 24)
    conv_a, bn, _, conv_b = align.conv1
    h = tokens.reshape(-1, 16) @ conv_a.weight.reshape(24, 16).t() + conv_a.bias  # [3*L, 24]
    h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias
    expected = h.relu() @ conv_b.weight.reshape(24, 24).t() + conv_b.bias
    close(out.reshape(-1, 24), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="last dimension is 16"):
        align(torch.randn(2, L, 8, dtype=torch.float64))


# ----- local features ---------------------------------------------------------------------------
def test_local_features_default_and_subsets():
    torch.manual_seed(8)
    z = torch.randn(3, L, 16)
    attn = torch.rand(3, L - 1)
    assert num_local_features() == 7
    torch.testing.assert_close(select_local_features(z, attn), plain_local(z, attn), rtol=0, atol=0)
    rows = select_local_features(z, attn, topk=3, parts=("mean", "topk")).reshape(3, 4, 16)
    order = attn.argsort(dim=-1, descending=True)[:, :3] + 1
    for i in range(3):
        torch.testing.assert_close(rows[i, :3], z[i, order[i]])
        torch.testing.assert_close(rows[i, 3], z[i].mean(0))  # mean last whatever the given order
    assert num_local_features(3, ("mean", "topk")) == 4
    assert select_local_features(z, attn, parts=("cls",)).shape == (3, 16)


def test_local_feature_errors():
    z, attn = torch.randn(2, L, 16), torch.rand(2, L - 1)
    with pytest.raises(ValueError, match="LOCAL_FEATURES .*subset of"):
        select_local_features(z, attn, parts=("cls", "patches"))
    with pytest.raises(ValueError, match="without repeats"):
        num_local_features(5, ("cls", "cls"))
    with pytest.raises(TypeError, match="must be a list"):
        num_local_features(5, "cls")
    with pytest.raises(ValueError, match="TOPK 17 exceeds the 16 patch tokens"):
        select_local_features(z, attn, topk=17)
    with pytest.raises(ValueError, match="TOPK must be a positive integer"):
        num_local_features(0)
    with pytest.raises(ValueError, match=r"cls_attn must be \[B, L-1\]"):
        select_local_features(z, torch.rand(2, L))


# ----- losses -----------------------------------------------------------------------------------
def test_coop_weighting_and_logged_parts():
    g, s, r = torch.tensor(1.5), torch.tensor(2.0), torch.tensor(0.01)
    total, parts = coop_total(g, s, r, balance=50.0, distill=20.0)
    assert total.item() == pytest.approx(1.5 + 2.0 / 50 + 0.2)
    assert {k: v.item() for k, v in parts.items()} == pytest.approx({"global": 1.5, "local": 0.04, "feature": 0.2})
    text = F.normalize(torch.randn(C, 8), dim=-1)
    assert regularisation_loss(text * 3.0, text).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="13 local features do not make 7 per image for a batch of 2"):
        semantic_loss(torch.randn(13, 8), text, torch.tensor([0, 1]), 100.0, 7)


def test_promptkd_losses_match_the_kl_formula():
    torch.manual_seed(9)
    student, teacher, local = torch.randn(4, C), torch.randn(4, C), torch.randn(28, C)
    t = 2.0

    def kl(s, p_t):
        return (p_t * (p_t.log() - F.log_softmax(s / t, dim=1))).sum() * t * t / s.numel()

    p_teacher = F.softmax(teacher / t, dim=1)
    close(kd_loss(student, teacher, t), kl(student, p_teacher))
    close(semantic_kd_loss(local, teacher, t, 7), kl(local, p_teacher.repeat_interleave(7, dim=0)))
    ukd, sem, mem = torch.tensor(0.5), torch.tensor(3.0), torch.tensor(0.02)
    total, parts = promptkd_total(ukd, sem, mem, kd_weight=1000.0)
    assert total.item() == pytest.approx(500 + 30 + 0.4)
    assert {k: v.item() for k, v in parts.items()} == pytest.approx({"L_ukd": 500.0, "L_sem": 30.0, "L_mem": 0.4})


def test_head_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="outputs 24-d tokens but the local cache is 16-d"):
        TextRefinerHead(FeatureAlignment(16, 24), LocalCache(16, M))
    with pytest.raises(TypeError, match="LOCAL_FEATURES must be a list"):
        TextRefinerHead(FeatureAlignment(16, 16), LocalCache(16, M), local_parts="cls")
