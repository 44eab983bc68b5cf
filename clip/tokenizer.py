"""CLIP's BPE tokenizer: instant-clip-tokenizer behind OpenAI's text cleaning.

OpenAI's SimpleTokenizer runs ftfy.fix_text, html.unescape twice, strip, collapses whitespace
to one space and lowercases before its BPE. instant-clip-tokenizer ships the same vocabulary
and merges and splits words the same way, so after the same cleaning the ids are OpenAI's.
"""
import functools
import html

import ftfy
import regex
import torch

SOT = 49406  # <|startoftext|>
EOT = 49407  # <|endoftext|>
SPECIAL = {"<|startoftext|>": SOT, "<|endoftext|>": EOT}
# OpenAI's pre-tokenisation: special tokens written in the text map to their ids
_WORDS = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def _bpe():
    from instant_clip_tokenizer import Tokenizer

    return Tokenizer()  # loads the bundled vocabulary once (slow to build)


def clean(text):
    """OpenAI's cleaning: fix mojibake, unescape HTML twice, collapse whitespace, lowercase."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


def encode(text):
    """BPE ids of ``text``, without the start and end tokens."""
    # word by word, as OpenAI's BPE runs: the package's own markers ("<start_of_text>") would
    # otherwise become special ids, while OpenAI's tokenizer spells them out
    ids = []
    for word in _WORDS.findall(clean(text)):
        ids += [SPECIAL[word]] if word in SPECIAL else _bpe().encode(word)
    return ids


def decode(ids):
    """Text of BPE ids (a row of ``tokenize`` too: SOT, and EOT with the padding after it, are cut).

    Padding is cut at EOT rather than by dropping zeros, since id 0 is also a real token ("!").
    """
    ids = [int(i) for i in ids]
    if EOT in ids:
        ids = ids[: ids.index(EOT)]
    if ids[:1] == [SOT]:
        ids = ids[1:]
    return _bpe().decode(ids)


def tokenize(texts, context_length=77, truncate=False):
    """Token ids [N, context_length] (int64): SOT, BPE ids, EOT, zero padding (OpenAI's clip.tokenize).

    A text longer than the context raises RuntimeError unless ``truncate``, which keeps the
    first ``context_length`` tokens and makes the last one EOT.
    """
    if isinstance(texts, str):
        texts = [texts]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = [SOT] + encode(text) + [EOT]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = EOT
        result[i, : len(tokens)] = torch.tensor(tokens)
    return result
