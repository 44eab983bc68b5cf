"""Tokenizer speed per backend: clip.tokenize over generated captions.

Each backend starts with an empty word cache ("cold": every distinct word goes through the
merge loop once) and then tokenizes the same captions again ("warm"). Two caption sets: a
generated world's (few distinct words) and one of made-up words (nearly every word new, the
worst case for the pure-Python merge loop). Also reports that both backends give the same ids.

usage: python bench/bench_tokenizer.py [--captions 10000] [--seed 0]
"""
import argparse
import os
import random
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from clip import tokenizer  # noqa: E402

SUBJECTS = ["red cube", "blue sphere", "green cylinder", "yellow cone", "striped torus", "small pyramid",
            "large wooden box", "metal ring", "glass bottle", "plush bear", "paper kite", "stone arch"]
PLACES = ["on a table", "in a field", "under a tree", "next to a wall", "on the grass", "in the snow",
          "near the water", "on a shelf", "in a dark room", "at sunset"]
STYLES = ["a photo of", "a blurry photo of", "a close-up photo of", "a rendering of", "a drawing of"]


SMALLEST = ["--captions", "20"]


def captions(n, seed):
    """Captions of a generated world: a style, one or two objects with a count, a place."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        objects = " and ".join(f"{rng.randint(1, 12)} {rng.choice(SUBJECTS)}s" for _ in range(rng.randint(1, 2)))
        out.append(f"{rng.choice(STYLES)} {objects} {rng.choice(PLACES)}, seen from the {rng.choice(['left', 'right', 'top'])}.")
    return out


def made_up_captions(n, seed):
    """Captions of five random lowercase words each: almost no word repeats."""
    rng = random.Random(seed)

    def word():
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))

    return [" ".join(word() for _ in range(5)) for _ in range(n)]


def run(backend, texts):
    bpe = tokenizer.load_bpe.__wrapped__(backend)  # a fresh instance: empty word cache
    real = tokenizer.load_bpe
    tokenizer.load_bpe = lambda backend="auto": bpe
    try:
        start = time.perf_counter()
        cold = tokenizer.tokenize(texts)
        cold_s = time.perf_counter() - start
        start = time.perf_counter()
        tokenizer.tokenize(texts)
        warm_s = time.perf_counter() - start
    finally:
        tokenizer.load_bpe = real
    return cold, cold_s, warm_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for label, texts in (("world captions", captions(args.captions, args.seed)),
                         ("made-up words", made_up_captions(args.captions, args.seed))):
        results = {}
        for backend in ("python", "instant"):
            try:
                results[backend] = run(backend, texts)
            except ImportError as err:
                print(f"{backend}: skipped ({err})")
                continue
            _, cold_s, warm_s = results[backend]
            print(f"{label:15s} {backend:8s} {len(texts)} captions: cold {cold_s:.2f} s ({len(texts) / cold_s:.0f}/s), "
                  f"warm {warm_s:.2f} s ({len(texts) / warm_s:.0f}/s)")
        if len(results) == 2:
            print(f"{label:15s} same ids on both backends:", torch.equal(results["python"][0], results["instant"][0]))

if __name__ == "__main__":
    main()
