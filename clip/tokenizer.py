"""CLIP's BPE tokenizer: instant-clip-tokenizer behind OpenAI's text cleaning.

OpenAI's SimpleTokenizer runs ftfy.fix_text, html.unescape twice, strip, collapses
whitespace and lowercases before the BPE; instant-clip-tokenizer ships the same vocabulary
and merges, so after the same cleaning the ids are OpenAI's.
"""
import functools
import html
import re

import ftfy
import torch

SOT = 49406  # <start_of_text>
EOT = 49407  # <end_of_text>


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from instant_clip_tokenizer import Tokenizer

    return Tokenizer()


def clean(text):
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    text = re.sub(r"\s+", " ", text.strip())
    return text.strip().lower()


def encode(text):
    """BPE ids of ``text`` without the start/end tokens."""
    return list(_tokenizer().encode(clean(text)))


def decode(ids):
    return _tokenizer().decode([i for i in ids if i not in (SOT, EOT, 0)])


def tokenize(texts, context_length=77, truncate=False):
    """[N, context_length] int64 ids: SOT, BPE ids, EOT, zero padding (OpenAI's clip.tokenize)."""
    if isinstance(texts, str):
        texts = [texts]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = [SOT] + encode(text) + [EOT]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {texts[i]} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = EOT
        result[i, : len(tokens)] = torch.tensor(tokens)
    return result
