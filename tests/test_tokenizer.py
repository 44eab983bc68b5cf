"""clip.tokenize / encode / decode against ids produced by OpenAI's SimpleTokenizer."""
import pytest
import torch

import clip
from clip.tokenizer import EOT, SOT, decode, encode

# ids from OpenAI's clip/simple_tokenizer.py (bpe_simple_vocab_16e6.txt.gz), computed once offline
OPENAI_IDS = {
    "a photo of a golden retriever.": [320, 1125, 539, 320, 3878, 28394, 269],
    "café crème": [15304, 1075, 12138, 614],
    "cafe\u0301 cre\u0300me": [15304, 1075, 12138, 614],  # decomposed accents: ftfy composes them
    "&amp;quot;quoted&amp;quot; &lt;b&gt;": [257, 27706, 257, 283, 321, 285],  # unescaped twice
    "don't": [847, 713],
    "it's": [585, 568],
    "  multiple    spaces\tand\nlines  ": [6470, 9006, 537, 3418],
    "Naïve Ångström FAÇADE": [1097, 35689, 563, 23176, 10352, 807, 7255, 332, 778, 10067, 1928],
    "mÃ©tro": [21890, 3332],  # mojibake fixed by ftfy
    "emoji 🐶 and 日本語": [16327, 10631, 537, 39121, 44353, 34002, 508],
    "Peugeot 3008 (2013)": [24129, 274, 271, 271, 279, 263, 273, 271, 272, 274, 264],  # digits one by one
    "l’été": [331, 262, 3459, 39694],
    "tab\u00a0nbsp\u3000ideographic": [14724, 6459, 4393, 1909, 78, 4245],
    "a_b-c/d": [320, 318, 321, 268, 322, 270, 323],
    "x<|endoftext|>y": [343, 49407, 344],  # special tokens written in the text
    "<|startoftext|>hi!<|endoftext|>": [49406, 1883, 0, 27, 347, 40786, 4160, 91, 285],
    "<start_of_text>": [283, 1572, 318, 539, 318, 4160, 285],  # not special for OpenAI
    '.;8a<end_of_text>"': [47596, 279, 320, 283, 806, 318, 539, 318, 4160, 29, 257],
    "": [],
}


@pytest.mark.parametrize("text", list(OPENAI_IDS))
def test_encode_matches_openai(text):
    assert encode(text) == OPENAI_IDS[text]


def test_tokenize_layout():
    tokens = clip.tokenize(["a photo of a golden retriever.", "don't"])
    assert tokens.shape == (2, 77) and tokens.dtype == torch.long
    assert tokens[0, :9].tolist() == [SOT, 320, 1125, 539, 320, 3878, 28394, 269, EOT]
    assert tokens[1, :4].tolist() == [SOT, 847, 713, EOT]
    assert tokens[0, 9:].eq(0).all() and tokens[1, 4:].eq(0).all()
    assert tokens.argmax(dim=-1).tolist() == [8, 3]  # EOT is the largest id: the text encoder relies on it


def test_tokenize_single_string_and_context_length():
    assert torch.equal(clip.tokenize("it's"), clip.tokenize(["it's"]))
    assert clip.tokenize("it's", context_length=8)[0].tolist() == [SOT, 585, 568, EOT, 0, 0, 0, 0]


def test_too_long_text_raises_openai_error():
    text = "a " * 80  # 80 tokens + SOT + EOT
    with pytest.raises(RuntimeError) as err:
        clip.tokenize(["fine", text])
    assert str(err.value) == f"Input {text} is too long for context length 77"


def test_truncate_keeps_the_first_tokens_and_ends_with_eot():
    text = "one two " * 40  # 80 tokens
    row = clip.tokenize(text, truncate=True)[0]
    ids = encode(text)
    assert row[0].item() == SOT and row[-1].item() == EOT
    assert row[1:76].tolist() == ids[:75]
    # exactly 77 tokens is not too long
    exact = "a " * 75
    assert clip.tokenize(exact)[0, -1].item() == EOT


def test_decode_round_trip_and_padding():
    row = clip.tokenize("Hello, wonderful World!")[0]
    assert decode(row).strip() == "hello , wonderful world !"
    # id 0 is the token "!" inside a word piece: decode must not drop it
    assert decode(encode("hi!<|endoftext|>")) != decode(encode("hi<|endoftext|>"))
    assert len(encode("golden retriever")) == 2
