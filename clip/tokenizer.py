"""CLIP's tokenizer: OpenAI's text cleaning and word split, then the BPE of one backend.

OpenAI's SimpleTokenizer runs ftfy.fix_text, html.unescape twice, strip, collapses whitespace
to one space and lowercases, splits words with one pattern, and runs its BPE on each word.
Two backends give the same ids: ``python`` (clip/bpe.py over OpenAI's vocabulary file from the
openai-clip package) and ``instant`` (the optional Rust package instant-clip-tokenizer, which
bundles the same vocabulary and merges; faster on words not seen before, wheels for Python
3.10-3.12 only). ``auto`` takes ``instant`` when it is installed.
"""
import functools
import html

import ftfy
import regex
import torch

from .bpe import BytePairEncoder, find_vocab_file

SOT = 49406  # <|startoftext|>
EOT = 49407  # <|endoftext|>
SPECIAL = {"<|startoftext|>": SOT, "<|endoftext|>": EOT}
# OpenAI's pre-tokenisation: special tokens written in the text map to their ids
_WORDS = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_SPACES = regex.compile(r"\s+")

BACKENDS = ("auto", "python", "instant")


@functools.lru_cache(maxsize=None)
def load_bpe(backend="auto"):
    """The BPE of ``backend``, built once: an object with ``encode(word)`` and ``decode(ids)``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown tokenizer backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend in ("auto", "instant"):
        try:
            from instant_clip_tokenizer import Tokenizer
        except ImportError:
            if backend == "instant":
                raise ImportError(
                    "the instant tokenizer backend needs `pip install instant-clip-tokenizer` "
                    "(wheels up to Python 3.12); the python backend gives the same ids"
                ) from None
        else:
            return Tokenizer()
    return BytePairEncoder(find_vocab_file())


def clean(text):
    """OpenAI's cleaning: fix mojibake, unescape HTML twice, collapse whitespace, lowercase."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return _SPACES.sub(" ", text).strip().lower()


def encode(text):
    """BPE ids of ``text``, without the start and end tokens."""
    # word by word, as OpenAI's BPE runs: the package's own markers ("<start_of_text>") would
    # otherwise become special ids, while OpenAI's tokenizer spells them out
    bpe = load_bpe()
    ids = []
    for word in _WORDS.findall(clean(text)):
        ids += [SPECIAL[word]] if word in SPECIAL else bpe.encode(word)
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
    # a start token left inside is spelt as OpenAI spells it, whatever the backend calls it
    bpe = load_bpe()
    pieces, start = [], 0
    for i, token in enumerate(ids + [SOT]):
        if token == SOT:
            pieces.append(bpe.decode(ids[start:i]))
            start = i + 1
    return "<|startoftext|>".join(pieces)


def tokenize(texts, context_length=77, truncate=False):
    """Token ids [N, context_length] (int64): SOT, BPE ids, EOT, zero padding (OpenAI's clip.tokenize).

    A text longer than the context raises RuntimeError unless ``truncate``, which keeps the
    first ``context_length`` tokens and makes the last one EOT.
    """
    if isinstance(texts, str):
        texts = [texts]
    rows = []
    for text in texts:
        tokens = [SOT] + encode(text) + [EOT]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = EOT
        rows.append(tokens + [0] * (context_length - len(tokens)))
    # one tensor for the batch: building a tensor per row costs as much as the BPE itself
    return torch.tensor(rows, dtype=torch.long).reshape(len(texts), context_length)
