"""Images of the generated world: one object on a background, drawn from attributes with numpy.

An object has a shape, a colour, a pattern (solid, striped, dotted, checkered: all keep the
silhouette, since stripes and dots are a darker shade of the object's colour, never the
background), a size and a position; the picture has a background and a rendering style:

    photo         filled object, mild sensor noise
    sketch        only the outline, in the object's colour, on white paper
    cartoon       flat fill with a thick black outline
    noisy photo   a photo under heavy noise
    blurry photo  a photo seen out of focus

Shape masks are drawn once per (shape, radius) with PIL at 4x and averaged down (anti-aliased),
then cached, so an image is a handful of numpy operations on 32x32 arrays.
"""
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 32
SHAPES = ("circle", "square", "triangle", "star", "heart", "cross", "diamond", "hexagon")
COLOURS = {
    "red": (215, 35, 35),
    "green": (30, 160, 50),
    "blue": (35, 70, 215),
    "yellow": (235, 215, 30),
    "orange": (240, 125, 20),
    "purple": (135, 50, 185),
    "pink": (245, 130, 200),
    "brown": (130, 80, 40),
}
PATTERNS = ("solid", "striped", "dotted", "checkered")
SIZES = ("small", "large")
BACKGROUNDS = {"grey": (128, 128, 128), "white": (235, 235, 235), "black": (20, 20, 20)}
STYLES = ("photo", "sketch", "cartoon", "noisy photo", "blurry photo")
POSITIONS = ("center", "left", "right", "top", "bottom")

_RADII = {"small": (6, 7, 8), "large": (10, 11, 12)}
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Attributes:
    """Everything an image shows (the exact radius, offset and tints are drawn at rendering)."""

    shape: str
    colour: str
    pattern: str = "solid"
    size: str = "large"
    position: str = "center"
    background: str = "grey"
    style: str = "photo"


def _polygon(shape, n_round=40):
    """Vertices in unit coordinates (x right, y down), the shape filling about [-1, 1]^2."""
    if shape == "circle":
        return [(math.cos(t), math.sin(t)) for t in np.linspace(0, 2 * math.pi, n_round, endpoint=False)]
    if shape == "square":
        return [(-0.82, -0.82), (0.82, -0.82), (0.82, 0.82), (-0.82, 0.82)]
    if shape == "triangle":
        return [(0.0, -1.0), (0.95, 0.8), (-0.95, 0.8)]
    if shape == "diamond":
        return [(0.0, -1.0), (0.75, 0.0), (0.0, 1.0), (-0.75, 0.0)]
    if shape == "hexagon":
        return [(math.cos(t), math.sin(t)) for t in np.arange(6) * math.pi / 3]
    if shape == "star":
        angles = -math.pi / 2 + np.arange(10) * math.pi / 5
        radii = [1.0 if i % 2 == 0 else 0.42 for i in range(10)]
        return [(r * math.cos(t), r * math.sin(t)) for r, t in zip(radii, angles)]
    if shape == "cross":
        a = 0.34
        return [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a),
                (-a, -a)]
    if shape == "heart":
        t = np.linspace(0, 2 * math.pi, n_round, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return list(zip(x / 17.0, (y + 2.5) / 17.0))
    raise ValueError(f'Unknown shape "{shape}". Known: {", ".join(SHAPES)}.')


@lru_cache(maxsize=None)
def shape_masks(shape, radius):
    """(fill, outline) alpha masks [2r+1, 2r+1] in [0, 1] for ``shape`` of ``radius`` pixels."""
    side = 2 * radius + 1
    big = side * _SUPERSAMPLE
    centre, scale = big / 2, radius * _SUPERSAMPLE
    points = [(centre + x * scale, centre + y * scale) for x, y in _polygon(shape)]
    masks = []
    for outline_only in (False, True):
        image = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(image)
        if outline_only:
            draw.polygon(points, outline=255, width=int(1.6 * _SUPERSAMPLE))
        else:
            draw.polygon(points, fill=255)
        alpha = np.asarray(image, dtype=np.float32).reshape(side, _SUPERSAMPLE, side, _SUPERSAMPLE).mean((1, 3))
        masks.append(alpha / 255.0)
    return masks[0], masks[1]


@lru_cache(maxsize=None)
def _pattern_tile(pattern, period):
    """A 0/1 map [2 * IMAGE_SIZE, 2 * IMAGE_SIZE]: 1 where the pattern darkens the object."""
    n = 2 * IMAGE_SIZE
    y, x = np.mgrid[0:n, 0:n]
    if pattern == "solid":
        return np.zeros((n, n), np.float32)
    if pattern == "striped":
        return ((x + y) % period < period / 2).astype(np.float32)
    if pattern == "dotted":
        return (((x % period) - period / 2 + 0.5) ** 2 + ((y % period) - period / 2 + 0.5) ** 2
                <= (period / 3.2) ** 2).astype(np.float32)
    if pattern == "checkered":
        return (((x // (period // 2)) + (y // (period // 2))) % 2).astype(np.float32)
    raise ValueError(f'Unknown pattern "{pattern}". Known: {", ".join(PATTERNS)}.')


def _centre(position, radius, rng):
    """Object centre (x, y) in pixels for a position name, with a random jitter."""
    lo, hi = radius + 1, IMAGE_SIZE - radius - 2
    mid = IMAGE_SIZE // 2
    edge = {"left": (lo, mid), "right": (hi, mid), "top": (mid, lo), "bottom": (mid, hi), "center": (mid, mid)}
    if position not in edge:
        raise ValueError(f'Unknown position "{position}". Known: {", ".join(POSITIONS)}.')
    x, y = edge[position]
    jx, jy = rng.integers(-2, 3, size=2)
    return int(np.clip(x + jx, lo, hi)), int(np.clip(y + jy, lo, hi))


def _blur(image):
    """A separable 1-2-1 blur applied twice ([H, W, 3] float)."""
    for _ in range(2):
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        image = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
        image = (image[:, :-2] + 2 * image[:, 1:-1] + image[:, 2:]) / 4
    return image


def render(attrs, rng):
    """One image [IMAGE_SIZE, IMAGE_SIZE, 3] uint8 of ``attrs``; ``rng`` (numpy Generator) draws the
    free details: exact radius, jitter, pattern phase and period, colour tints and noise."""
    if attrs.colour not in COLOURS:
        raise ValueError(f'Unknown colour "{attrs.colour}". Known: {", ".join(COLOURS)}.')
    if attrs.style not in STYLES:
        raise ValueError(f'Unknown style "{attrs.style}". Known: {", ".join(STYLES)}.')
    if attrs.background not in BACKGROUNDS:
        raise ValueError(f'Unknown background "{attrs.background}". Known: {", ".join(BACKGROUNDS)}.')
    radius = int(rng.choice(_RADII[attrs.size]))
    fill, outline = shape_masks(attrs.shape, radius)
    cx, cy = _centre(attrs.position, radius, rng)
    side = 2 * radius + 1
    window = (slice(cy - radius, cy - radius + side), slice(cx - radius, cx - radius + side))

    tint = rng.normal(0, 8, 3)
    if attrs.style == "sketch":
        background = np.array((242.0, 240.0, 232.0)) + rng.normal(0, 4, 3)
    else:
        background = np.array(BACKGROUNDS[attrs.background], np.float64) + tint
    image = np.empty((IMAGE_SIZE, IMAGE_SIZE, 3), np.float64)
    image[:] = background
    colour = np.array(COLOURS[attrs.colour], np.float64) + rng.normal(0, 10, 3)

    if attrs.style == "sketch":
        alpha = outline[..., None]
        layer = np.broadcast_to(colour * 0.85, (side, side, 3))
    else:
        period = int(rng.choice((4, 6)))
        oy, ox = rng.integers(0, IMAGE_SIZE, size=2)
        marks = _pattern_tile(attrs.pattern, period)[oy:oy + side, ox:ox + side][..., None]
        layer = colour * (1 - 0.45 * marks)  # [side, side, 3]: the pattern darkens, never hides
        alpha = fill[..., None]
        if attrs.style == "cartoon":
            edge = outline[..., None]
            layer = layer * (1 - edge) + 10.0 * edge
    region = image[window]
    image[window] = region * (1 - alpha) + layer * alpha

    if attrs.style == "blurry photo":
        image = _blur(image)
    noise = {"noisy photo": 45.0, "photo": 6.0, "blurry photo": 4.0}.get(attrs.style, 2.0)
    image += rng.normal(0, noise, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def render_image(attrs, rng):
    """``render`` as a PIL image."""
    return Image.fromarray(render(attrs, rng))
