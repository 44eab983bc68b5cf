"""Captions from a prefix: OPT's ``generate`` on [prefix, BOS] embeddings with its KV cache.

As the reference: the prompt is the empty string (its tokenization is OPT's BOS), a caption ends at
"\\n" or after ``max_new_tokens``, beam search by default (all beams returned when
``num_captions == num_beams``), nucleus sampling (top-p 0.92, no top-k) as an option. Decoding
drops special tokens, strips, and cleans the spaces before punctuation and English contractions
(" ." -> ".", " n't" -> "n't", ...) here: the reference's transformers (4.26) did so by default, newer
versions do not for BPE tokenizers, and it changes the metrics.
"""
import torch

# the clean-up of transformers 4.26's decode (clean_up_tokenization_spaces=True), in its order
CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up(text):
    for old, new in CLEAN_UP:
        text = text.replace(old, new)
    return text


def end_of_caption_id(tokenizer):
    ids = tokenizer("\n", add_special_tokens=False).input_ids
    if len(ids) != 1:
        raise ValueError(f'The tokenizer of --llm encodes "\\n" as {ids}, not one token: it cannot end a caption')
    return ids[0]


@torch.no_grad()
def generate(captioner, tokenizer, prefix, num_beams=5, num_captions=1, max_new_tokens=50, nucleus=False, top_p=0.92):
    """prefix [1, L, W] -> ``num_captions`` caption strings (beam order, best first, for beam search)."""
    bos = torch.full((1, 1), tokenizer.bos_token_id, dtype=torch.long, device=prefix.device)
    text = captioner.llm.get_input_embeddings()(bos)
    embeds = torch.cat([prefix.to(text.dtype), text], dim=1)  # [1, L + 1, W]
    mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=prefix.device)
    if nucleus:
        search = dict(do_sample=True, top_p=top_p, top_k=0, num_beams=1)
    else:
        search = dict(do_sample=False, num_beams=num_beams)
    out = captioner.llm.generate(
        inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens, num_return_sequences=num_captions,
        eos_token_id=end_of_caption_id(tokenizer), pad_token_id=tokenizer.pad_token_id, use_cache=True,
        length_penalty=1.0, repetition_penalty=1.0, **search,
    )  # [num_captions, <= max_new_tokens]: only the new tokens (no input ids were given)
    texts = tokenizer.batch_decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return [clean_up(t).strip() for t in texts]
