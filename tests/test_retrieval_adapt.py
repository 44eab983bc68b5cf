"""Retrieval adaptation (RLCF, and distillation from the reward CLIP) against straightforward
recomputations (tiny student and reward CLIPs, fp32)."""
import copy

import pytest
import torch

import clip
from tools.tiny_clip import tiny_clip_model
from tta.core.rewards import CLIPReward
from tta.retrieval.adapt import QueryTuner, adamw, tuned_parameters
from tta.retrieval.objectives import DistillationObjective, RewardObjective

CAPTIONS = ["a red circle", "a blue square", "a green star on a white background", "a small heart",
            "a sketch of a cross", "a large yellow diamond", "a striped hexagon", "a dotted triangle"]
K, LR, WD = 3, 1e-3, 5e-4

_MODELS = {}


def model(key, **kwargs):
    if key not in _MODELS:
        _MODELS[key] = tiny_clip_model("vit", **kwargs)
    return copy.deepcopy(_MODELS[key])


def student():
    return model("student", seed=0)


def reward_clip():
    return model("reward", seed=3, embed_dim=48, vision_layers=3, text_layers=3)


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


@pytest.fixture(scope="module")
def images():
    return torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def side_features(m, images):
    with torch.no_grad():
        return unit(m.encode_image(images)), unit(m.encode_text(clip.tokenize(CAPTIONS)))


def setup(direction, images, steps=1, kd=False, **kw):
    """(tuner, queries, reward query features) for a direction on the tiny set; ``kd``: distillation
    from the reward CLIP instead of RLCF."""
    policy, rew = student(), reward_clip()
    p_img, p_txt = side_features(policy, images)
    r_img, r_txt = side_features(rew, images)
    reward = CLIPReward([rew], sample_k=K)
    if direction == "image2text":
        gallery, queries = p_txt, [images[i:i + 1] for i in range(len(images))]
        reward.set_candidates([r_txt])
        reward_queries = [[r_img[i:i + 1]] for i in range(len(images))]
    else:
        gallery, queries = p_img, [clip.tokenize(c) for c in CAPTIONS]
        reward.set_candidates([r_img])
        reward_queries = [[r_txt[i:i + 1]] for i in range(len(CAPTIONS))]
    objective = RewardObjective(reward)
    if kd:
        objective = DistillationObjective(reward.class_features[0], rew.logit_scale.exp().item())
    tuner = QueryTuner(policy, direction, gallery, objective, steps, LR, WD, **kw)
    return tuner, queries, reward_queries, (r_img, r_txt)


def reference_loss(m, direction, query, gallery, reward_query, reward_gallery):
    """The RLCF loss written out: top-K of the logits, 2.5 max(cos, 0) minus its mean, reward x CE."""
    if direction == "image2text":
        q = unit(m.encode_image(query))
    else:
        q = unit(m.encode_text(query))
    logits = (m.logit_scale.exp() * q @ gallery.t())[0]  # [G]
    top = logits.topk(K).indices
    scores = torch.stack([torch.clamp(2.5 * reward_query[0] @ reward_gallery[c], min=0) for c in top])
    advantage = scores - scores.mean()
    return torch.stack([advantage[j] * -logits.log_softmax(-1)[c] for j, c in enumerate(top)]).mean()


def reference_model(tuner):
    """A copy of the tuner's model with every parameter its direction tunes requiring grad."""
    reference = copy.deepcopy(tuner.model)
    for p in tuned_parameters(reference, tuner.direction).values():
        p.requires_grad_(True)
    return reference


def adapted(tuner, name, query, original):
    """The tuner's adapted value of ``name``. text2image tunes the token embedding's rows of the query
    only (tuner.rows); the other rows cannot reach the query's loss or scores, so they are compared
    where they matter: the query's rows."""
    if name != "token_embedding.weight" or name in tuner.params:
        return tuner.params[name]
    ids = torch.unique(query[0])
    weight = original.detach().clone()
    weight[ids] = tuner.rows[: len(ids)].detach()
    return weight


@pytest.mark.parametrize("direction", ["image2text", "text2image"])
def test_loss_and_one_update_equal_recomputation(direction, images):
    tuner, queries, reward_queries, (r_img, r_txt) = setup(direction, images)
    reference = reference_model(tuner)
    reward_gallery = r_txt if direction == "image2text" else r_img
    for query, rq in zip(queries, reward_queries):  # a query with a reward that is not all zero (clamped)
        expected = reference_loss(reference, direction, query, tuner.gallery, rq[0], reward_gallery)
        if expected.abs() > 1e-6:
            break
    assert expected.abs() > 1e-6
    tuner.objective.set_queries(rq)
    loss = tuner.step(query)
    assert torch.allclose(loss, expected, atol=1e-6)
    tuned = tuned_parameters(reference, direction)
    grads = torch.autograd.grad(expected, list(tuned.values()), allow_unused=True)
    changed = 0
    for (name, p0), g in zip(tuned.items(), grads):
        g = torch.zeros_like(p0) if g is None else g
        want = p0 * (1 - LR * WD) - LR * g / (g.abs() + 1e-6)  # AdamW's first step, eps 1e-6
        got = adapted(tuner, name, query, p0)
        assert torch.allclose(got, want, atol=1e-6), name
        changed += not torch.equal(got, p0)
    assert changed > 0
    for name, p in tuner.model.named_parameters():  # the other tower is untouched
        if name not in tuned:
            assert torch.equal(p, dict(reference.named_parameters())[name]), name


def reference_kd_loss(m, direction, query, gallery, reward_query, reward_gallery, reward_scale):
    """The distillation loss written out: -sum_g p_teacher(g) log p_student(g) over the whole gallery."""
    q = unit(m.encode_image(query) if direction == "image2text" else m.encode_text(query))
    student = (m.logit_scale.exp() * q @ gallery.t())[0]  # [G]
    teacher = torch.softmax(reward_scale * reward_query[0] @ reward_gallery.t(), dim=-1)
    return -sum(teacher[g] * torch.log(torch.exp(student[g]) / torch.exp(student).sum()) for g in range(len(student)))


@pytest.mark.parametrize("direction", ["image2text", "text2image"])
def test_distillation_loss_and_one_update_equal_recomputation(direction, images):
    tuner, queries, reward_queries, (r_img, r_txt) = setup(direction, images, kd=True)
    reference = reference_model(tuner)
    reward_gallery = r_txt if direction == "image2text" else r_img
    scale = reward_clip().logit_scale.exp().item()
    assert tuner.objective.logit_scale == scale and scale > 1
    query, rq = queries[2], reward_queries[2]
    expected = reference_kd_loss(reference, direction, query, tuner.gallery, rq[0], reward_gallery, scale)
    tuner.objective.set_queries(rq)
    loss = tuner.step(query)
    assert torch.allclose(loss, expected, atol=1e-5)
    tuned = tuned_parameters(reference, direction)
    grads = torch.autograd.grad(expected, list(tuned.values()), allow_unused=True)
    changed = 0
    for (name, p0), g in zip(tuned.items(), grads):
        g = torch.zeros_like(p0) if g is None else g
        if name in tuner.params:
            got = tuner.params[name].grad
        else:  # the token rows: their gradients, the other rows' zero
            ids = torch.unique(query[0])
            got = torch.zeros_like(p0)
            got[ids] = tuner.rows.grad[: len(ids)]
        assert torch.allclose(got, g, atol=1e-6), name
        # AdamW's first step, eps 1e-6, on the gradient the tuner took: g / (|g| + eps) turns gradients
        # near eps (here down to 1e-9) into steps of any size, so it is checked on that gradient
        want = p0 * (1 - LR * WD) - LR * got / (got.abs() + 1e-6)
        value = adapted(tuner, name, query, p0)
        assert torch.allclose(value, want if name in tuner.params else torch.where(got != 0, want, p0),
                              atol=1e-7), name
        changed += not torch.equal(value, p0)
    assert changed > 0
    with pytest.raises(ValueError, match="distillation takes one reward CLIP, got 2"):
        tuner.objective.set_queries(rq * 2)


def test_what_each_direction_tunes():
    m = student()
    visual = set(tuned_parameters(m, "image2text"))
    text = set(tuned_parameters(m, "text2image"))
    assert visual and all(n.startswith("visual.") for n in visual)
    assert {"token_embedding.weight", "positional_embedding", "text_projection", "logit_scale",
            "ln_final.weight"} <= text
    assert visual | text == {n for n, _ in m.named_parameters()} and not visual & text


@pytest.mark.parametrize("direction", ["image2text", "text2image"])
def test_reset_is_exact(direction, images):
    tuner, queries, rqs, _ = setup(direction, images, steps=2)
    original = {k: v.clone() for k, v in tuner.params.items()}
    tuner(queries[0], rqs[0])
    assert all(torch.equal(tuner.params[k], v) for k, v in original.items())
    state = tuner.optimizer.state_dict()["state"]  # a fresh AdamW's: zero steps and moments
    assert len(state) == len(tuner.optimizer.param_groups[0]["params"])
    assert all(not t.any() for s in state.values() for t in s.values())
    after_first = tuner(queries[2], rqs[2])
    alone, queries, rqs, _ = setup(direction, images, steps=2)
    assert torch.equal(after_first, alone(queries[2], rqs[2]))
    zero_shot, queries, rqs, _ = setup(direction, images, steps=0)
    assert not torch.equal(after_first, zero_shot(queries[2], rqs[2]))  # the adaptation changed the scores


def test_score_row_is_recomputed_after_adaptation(images):
    tuner, queries, rqs, _ = setup("image2text", images, steps=2)
    tuner.objective.set_queries(rqs[3])
    for _ in range(2):
        tuner.step(queries[3])
    with torch.no_grad():
        adapted = tuner.logits(queries[3])[0]
    fresh, queries, rqs, _ = setup("image2text", images, steps=2)
    assert torch.equal(fresh(queries[3], rqs[3]), adapted)


def adapted_weights(direction, images, index, steps=2):
    """The tuned weights after adapting to query ``index`` from the original weights."""
    tuner, queries, rqs, _ = setup(direction, images, steps=steps)
    tuner.objective.set_queries(rqs[index])
    for _ in range(steps):
        tuner.step(queries[index])
    return {k: v.detach().clone() for k, v in tuner.params.items()}


def test_momentum_buffer(images):
    m, w = 0.5, 0.7
    tuner, queries, rqs, _ = setup("image2text", images, steps=2, momentum_update=True, momentum=m,
                                   update_freq=2, update_w=w)
    original = {k: v.clone() for k, v in tuner.params.items()}
    a0, a1 = adapted_weights("image2text", images, 0), adapted_weights("image2text", images, 1)
    tuner(queries[0], rqs[0])
    for k, v in tuner.params.items():  # one query: the EMA moved, the reset point not yet
        assert torch.equal(v, original[k])
        assert torch.allclose(tuner.reset_point.ema[k], m * original[k] + (1 - m) * a0[k], atol=1e-7)
    tuner(queries[1], rqs[1])  # the second query also started from the original weights
    for k, v in tuner.params.items():
        ema = m * (m * original[k] + (1 - m) * a0[k]) + (1 - m) * a1[k]
        assert torch.allclose(tuner.reset_point.ema[k], ema, atol=1e-7)
        assert torch.allclose(v, (1 - w) * original[k] + w * ema, atol=1e-7), k  # the new reset point
    assert tuner.reset_point.counter == 0
    assert any(not torch.equal(tuner.params[k], original[k]) for k in original)


@pytest.mark.parametrize("direction", ["image2text", "text2image"])
def test_fused_update_equals_the_default_loop(direction, images):
    """On CPU the tuner's AdamW is torch's fused kernel: over several steps the weights equal those of
    the default per-tensor loop the reference runs."""
    tuner, queries, rqs, _ = setup(direction, images)
    assert tuner.optimizer.defaults["fused"] is True
    loop, _, _, _ = setup(direction, images)
    loop.optimizer = torch.optim.AdamW(loop.optimizer.param_groups[0]["params"], lr=LR, eps=1e-6, weight_decay=WD,
                                       foreach=False)
    for t in (tuner, loop):
        t.objective.set_queries(rqs[1])
        for _ in range(3):
            t.step(queries[1])
    for name, p in tuner.params.items():
        assert torch.allclose(p, loop.params[name], atol=1e-6), name
    if direction == "text2image":
        assert torch.allclose(tuner.rows, loop.rows, atol=1e-6)
    assert any(not torch.equal(p, loop.reset_point.original[n]) for n, p in loop.params.items())


def test_text2image_tunes_the_query_rows_only(images):
    """text2image without the momentum buffer tunes the token rows of the query; its score rows over
    three queries of 3 steps equal those of tuning the whole token embedding (the momentum buffer's
    path, whose reset point does not move before update_freq queries)."""
    rows, queries, rqs, _ = setup("text2image", images, steps=3)
    whole, _, _, _ = setup("text2image", images, steps=3, momentum_update=True, update_freq=100)
    assert rows.rows is not None and "token_embedding.weight" not in rows.params
    assert whole.rows is None and "token_embedding.weight" in whole.params
    assert not rows.model.token_embedding.weight.requires_grad
    embedding = rows.model.token_embedding.weight.clone()
    zero_shot, _, _, _ = setup("text2image", images, steps=0)
    moved = 0
    for i in (3, 5, 3):
        got, want = rows(queries[i], rqs[i]), whole(queries[i], rqs[i])
        assert torch.allclose(got, want, atol=1e-6, rtol=0)
        moved += (got - zero_shot(queries[i], rqs[i])).abs().max().item() > 0.1
    assert moved  # the adaptation changed scores
    assert torch.equal(rows.model.token_embedding.weight, embedding)  # the embedding itself never moves
    rows.objective.set_queries(rqs[1])
    rows.step(queries[1])
    with pytest.raises(ValueError, match="a new query before the reset of the last one"):
        rows.step(queries[2])


def test_adamw_off_cpu_is_torch_default():
    """Parameters on another device (here the meta device) get torch's own choice (foreach on CUDA)."""
    assert adamw([torch.zeros(3, device="meta", requires_grad=True)], LR, WD).defaults["fused"] is None
    assert adamw([torch.zeros(3, requires_grad=True)], LR, WD).defaults["fused"] is True
