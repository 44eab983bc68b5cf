"""The reference computations of CoCoOp, KgCoOp and TextRefiner on them, written out plainly
(full 77-token prompts, loops over images and cache rows) for the tests to compare against."""
import torch
import torch.nn.functional as F

import clip


def plain_text_encoder(clip_model, prompts, tokenized):
    """The reference TextEncoder: all 77 positions through the transformer, the EOT row projected."""
    x = prompts + clip_model.positional_embedding
    x = clip_model.ln_final(clip_model.transformer(x))
    return x[torch.arange(x.shape[0]), tokenized.argmax(dim=-1)] @ clip_model.text_projection


def normalise(x):
    return x / x.norm(dim=-1, keepdim=True)


def plain_image_features(clip_model, image):
    return normalise(clip_model.visual(image))


def plain_cocoop_text(clip_model, learner, image_features):
    """Per image: ctx + meta_net(f_i) on every context token, [SOS ctx_i CLASS . EOT] -> [B, C, D]."""
    ctx_shifted = learner.ctx.unsqueeze(0) + learner.meta_net(image_features).unsqueeze(1)  # [B, n_ctx, d]
    texts = []
    for ctx_i in ctx_shifted:
        ctx_i = ctx_i.unsqueeze(0).expand(learner.n_cls, -1, -1)
        prompts = torch.cat([learner.token_prefix, ctx_i, learner.token_suffix], dim=1)  # [C, 77, d]
        texts.append(normalise(plain_text_encoder(clip_model, prompts, learner.tokenized_prompts)))
    return torch.stack(texts)


def plain_cocoop_logits(clip_model, learner, image):
    """CoCoOp's CustomCLIP.forward: logits_i = scale * f_i @ text_i^T, a loop over the images."""
    imf = plain_image_features(clip_model, image)
    text = plain_cocoop_text(clip_model, learner, imf)
    return torch.stack([clip_model.logit_scale.exp() * f @ t.t() for f, t in zip(imf, text)])


def plain_coop_text(clip_model, learner):
    """CoOp's generic context with the class at the end: [C, D] normalised."""
    ctx = learner.ctx.unsqueeze(0).expand(learner.n_cls, -1, -1)
    prompts = torch.cat([learner.token_prefix, ctx, learner.token_suffix], dim=1)
    return normalise(plain_text_encoder(clip_model, prompts, learner.tokenized_prompts))


def plain_clip_text(clip_model, classnames, template):
    tokens = clip.tokenize([template.format(name.replace("_", " ")) for name in classnames])
    with torch.no_grad():
        return normalise(clip_model.encode_text(tokens))


def plain_kg(text, clip_text):
    """KgCoOp's score: 1 - mean of torch.nn.CosineSimilarity(dim=1, eps=1e-7)."""
    return 1.0 - torch.mean(torch.nn.CosineSimilarity(dim=1, eps=1e-07)(text, clip_text))


# ----- TextRefiner (CoOp variant), one text row set at a time ---------------------------------------
def plain_refine(text, cache, weight, alpha):
    """t~ = alpha * W [t ; softmax(norm(t) cache^T) cache] + t for text [C, D]."""
    read = F.softmax(normalise(text) @ cache.t(), dim=1) @ cache
    return alpha * (torch.cat([text, read], dim=1) @ weight.t()) + text


def plain_local(aligned, cls_attn, k=5):
    """CLS, the k patches the CLS token attends to most, the mean of all tokens: [k + 2, D]."""
    idx = torch.topk(cls_attn, k).indices + 1
    return torch.cat([aligned[:1], aligned[idx], aligned.mean(dim=0, keepdim=True)])


def plain_refiner_terms(scale, image_feature, text, local, label, cache, weight, alpha):
    """For one image: its logits against t~, the semantic CE of its local rows, |norm(t~) - t| mean."""
    refined = plain_refine(text, cache, weight, alpha)
    logits = scale * image_feature @ refined.t()
    semantic = F.cross_entropy(scale * local @ text.t(), label.repeat(local.shape[0]))
    regularisation = (normalise(refined) - text).abs().mean()
    return logits, semantic, regularisation
