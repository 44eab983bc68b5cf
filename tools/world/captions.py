"""Captions of world images, and the image-caption stream that pretraining reads.

A caption names some of an image's attributes through one of several templates, as web alt
texts do: "a photo of a red striped star.", "a sketch of a star.", "a small red star on a grey
background.", "a cartoon of a pink shape.". The rendering style is named most of the time
("a photo of", "a sketch of", "a noisy photo of", ...), so the text tower learns what each
style phrase means, and a prompt that names the wrong style fits an image less well.
"""
import numpy as np

from .render import BACKGROUNDS, COLOURS, PATTERNS, POSITIONS, SHAPES, SIZES, STYLES, Attributes, render

# what the object is called: (probability, which attributes are named)
CONTENT = (
    (0.25, ("colour", "pattern", "shape")),
    (0.25, ("colour", "shape")),
    (0.20, ("shape",)),
    (0.15, ("pattern", "shape")),
    (0.15, ("colour",)),  # "a red shape"
)
P_STYLE = 0.8  # the style phrase is named
P_SIZE = 0.3
P_BACKGROUND = 0.3
P_POSITION = 0.2
POSITION_PHRASES = {"center": "in the center", "left": "on the left", "right": "on the right", "top": "at the top",
                    "bottom": "at the bottom"}


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def object_name(attrs, named):
    """The object's noun phrase: "red striped star", "striped star", "star" or "red shape"."""
    words = [attrs.colour] if "colour" in named else []
    if "pattern" in named and attrs.pattern != "solid" and attrs.style != "sketch":  # a sketch shows no pattern
        words.append(attrs.pattern)
    words.append(attrs.shape if "shape" in named else "shape")
    return " ".join(words)


def caption(attrs, rng):
    """One caption of ``attrs`` (a random template, a random subset of attributes named)."""
    p = [w for w, _ in CONTENT]
    named = CONTENT[rng.choice(len(CONTENT), p=p)][1]
    noun = object_name(attrs, named)
    if rng.random() < P_SIZE:
        noun = f"{attrs.size} {noun}"
    phrase = f"{article(noun)} {noun}"
    if rng.random() < P_STYLE:
        phrase = f"{article(attrs.style)} {attrs.style} of {phrase}"
    if rng.random() < P_BACKGROUND and attrs.style != "sketch":
        phrase += f" on a {attrs.background} background"
    if rng.random() < P_POSITION:
        phrase += f" {POSITION_PHRASES[attrs.position]}"
    return phrase + "."


def vocabulary():
    """Every word a caption or a class name can use (their BPE tokens are all the text tower needs)."""
    words = ["a", "an", "of", "shape", "on", "background", "."]
    for options in (SHAPES, COLOURS, PATTERNS, SIZES, BACKGROUNDS, STYLES, POSITION_PHRASES.values()):
        words.extend(w for option in options for w in option.split())
    return sorted(set(words))


def random_attributes(rng, colours=tuple(COLOURS), **fixed):
    """Attributes drawn uniformly (colours from ``colours``); keyword arguments fix some of them."""
    choices = dict(shape=SHAPES, colour=colours, pattern=PATTERNS, size=SIZES, position=POSITIONS,
                   background=tuple(BACKGROUNDS), style=STYLES)
    values = {key: fixed[key] if key in fixed else options[rng.integers(len(options))]
              for key, options in choices.items()}
    return Attributes(**values)


def pretraining_batch(rng, batch_size, colours_per_batch=2):
    """(images [B, 32, 32, 3] uint8, captions) for one contrastive batch.

    Each batch uses only ``colours_per_batch`` colours, so most negatives share the positive's
    colour and the easy colour cue cannot separate them: the model must also see shape,
    pattern and style.
    """
    colours = tuple(rng.choice(list(COLOURS), size=colours_per_batch, replace=False))
    images, texts = [], []
    for _ in range(batch_size):
        attrs = random_attributes(rng, colours=colours)
        images.append(render(attrs, rng))
        texts.append(caption(attrs, rng))
    return np.stack(images), texts
