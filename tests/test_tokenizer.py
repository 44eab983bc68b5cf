"""clip.tokenize / encode / decode against ids produced by OpenAI's SimpleTokenizer, on each backend."""
import importlib.metadata
import random

import pytest
import torch

import clip
from clip import bpe, tokenizer
from clip.tokenizer import EOT, SOT, decode, encode

try:
    import instant_clip_tokenizer  # noqa: F401  (the optional fast backend)

    INSTANT = True
except ImportError:
    INSTANT = False
BACKENDS = ["python", pytest.param("instant", marks=pytest.mark.skipif(not INSTANT, reason="instant-clip-tokenizer not installed"))]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """The test runs on each backend: encode / decode / tokenize see only that one."""
    chosen = tokenizer.load_bpe(request.param)
    monkeypatch.setattr(tokenizer, "load_bpe", lambda backend="auto": chosen)
    return chosen


on_each_backend = pytest.mark.usefixtures("backend")

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
    "supercalifragilisticexpialidocious": [1642, 2857, 13093, 2076, 5868, 26850, 835, 639, 38466],
    "aaaaaaaaaaaaaaaaaaaa": [23126, 23126, 19336],  # a pair repeating: merged left to right
    "soft\xadhyphen": [3773, 22618, 1441, 745, 576],  # a byte outside the printable ones
    "ctrl\x01char\x7f": [35602, 75, 16017],
    "Ελληνικά ру́сский": [138, 113, 138, 119, 138, 119, 138, 115, 138, 121, 138, 117, 138, 118, 138, 361,
                         16370, 141, 481, 136, 479, 23669, 23669, 27152, 29503, 373],
    "1080p 4k 30fps": [272, 271, 279, 271, 335, 275, 330, 274, 271, 25300],
    "": [],
}


@on_each_backend
@pytest.mark.parametrize("text", list(OPENAI_IDS))
def test_encode_matches_openai(text):
    assert encode(text) == OPENAI_IDS[text]


@on_each_backend
def test_tokenize_layout():
    tokens = clip.tokenize(["a photo of a golden retriever.", "don't"])
    assert tokens.shape == (2, 77) and tokens.dtype == torch.long
    assert tokens[0, :9].tolist() == [SOT, 320, 1125, 539, 320, 3878, 28394, 269, EOT]
    assert tokens[1, :4].tolist() == [SOT, 847, 713, EOT]
    assert tokens[0, 9:].eq(0).all() and tokens[1, 4:].eq(0).all()
    assert tokens.argmax(dim=-1).tolist() == [8, 3]  # EOT is the largest id: the text encoder relies on it


@on_each_backend
def test_tokenize_single_string_and_context_length():
    assert torch.equal(clip.tokenize("it's"), clip.tokenize(["it's"]))
    assert clip.tokenize("it's", context_length=8)[0].tolist() == [SOT, 585, 568, EOT, 0, 0, 0, 0]
    assert clip.tokenize([]).shape == (0, 77)


@on_each_backend
def test_too_long_text_raises_openai_error():
    text = "a " * 80  # 80 tokens + SOT + EOT
    with pytest.raises(RuntimeError) as err:
        clip.tokenize(["fine", text])
    assert str(err.value) == f"Input {text} is too long for context length 77"


@on_each_backend
def test_truncate_keeps_the_first_tokens_and_ends_with_eot():
    text = "one two " * 40  # 80 tokens
    row = clip.tokenize(text, truncate=True)[0]
    ids = encode(text)
    assert row[0].item() == SOT and row[-1].item() == EOT
    assert row[1:76].tolist() == ids[:75]
    # exactly 77 tokens is not too long
    exact = "a " * 75
    assert clip.tokenize(exact)[0, -1].item() == EOT


@on_each_backend
def test_decode_round_trip_and_padding():
    row = clip.tokenize("Hello, wonderful World!")[0]
    assert decode(row).strip() == "hello , wonderful world !"
    # id 0 is the token "!" inside a word piece: decode must not drop it
    assert decode(encode("hi!<|endoftext|>")) != decode(encode("hi<|endoftext|>"))
    assert len(encode("golden retriever")) == 2


def test_python_backend_matches_instant_on_random_text():
    if not INSTANT:
        pytest.skip("instant-clip-tokenizer not installed")
    python, instant = tokenizer.load_bpe("python"), tokenizer.load_bpe("instant")
    rng = random.Random(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyz0123456789 .,;:!?'\"-_/()&<>|") + list("éçñßøüÿ日本한어рсαγ🐶\u0301\xad\x00")
    for _ in range(1000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        for word in tokenizer._WORDS.findall(tokenizer.clean(text)):
            if word not in tokenizer.SPECIAL:
                assert python.encode(word) == instant.encode(word), word
        ids = [rng.randrange(SOT) for _ in range(6)]
        assert python.decode(ids) == instant.decode(ids), ids


@on_each_backend
def test_start_token_inside_decodes_as_openai_spells_it():
    assert decode([SOT, 1883, SOT, 1883, EOT, 0]) == "hi <|startoftext|>hi "


def test_word_cache_returns_copies():
    python = tokenizer.load_bpe("python")
    first = python.encode("retriever")
    first.append(-1)
    assert python.encode("retriever") == [28394] and "retriever" in python.cache


def test_missing_vocabulary_file_says_how_to_install_it(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match=r"bpe_simple_vocab_16e6\.txt\.gz.*pip install openai-clip==1\.0\.1"):
        tokenizer.load_bpe.__wrapped__("python")


def test_vocabulary_file_with_too_few_merges_is_refused(tmp_path):
    import gzip

    path = tmp_path / "vocab.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("#version: 0.2\ni n\nt h\n")
    with pytest.raises(ValueError, match="expected 48894 merge lines"):
        bpe.BytePairEncoder(str(path))


def test_unknown_or_missing_backend_is_named(monkeypatch):
    with pytest.raises(ValueError, match="unknown tokenizer backend 'rust'"):
        tokenizer.load_bpe.__wrapped__("rust")
    monkeypatch.setitem(__import__("sys").modules, "instant_clip_tokenizer", None)  # import fails
    with pytest.raises(ImportError, match="pip install instant-clip-tokenizer"):
        tokenizer.load_bpe.__wrapped__("instant")
    assert isinstance(tokenizer.load_bpe.__wrapped__("auto"), bpe.BytePairEncoder)
