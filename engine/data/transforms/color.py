"""Colour and blur ops on PIL images with torchvision's numerics (PIL's ImageEnhance, a
torch Gaussian kernel with reflect padding)."""
import numpy as np
import torch
import torch.nn.functional as nnf
from PIL import Image, ImageEnhance


def adjust_brightness(img, factor):
    return ImageEnhance.Brightness(img).enhance(factor)


def adjust_contrast(img, factor):
    return ImageEnhance.Contrast(img).enhance(factor)


def adjust_saturation(img, factor):
    return ImageEnhance.Color(img).enhance(factor)


def adjust_hue(img, factor):
    """Rotate the HSV hue channel by ``factor`` of a turn (factor in [-0.5, 0.5])."""
    if not -0.5 <= factor <= 0.5:
        raise ValueError(f"hue factor {factor} is not in [-0.5, 0.5]")
    if img.mode in ("L", "1", "I", "F"):
        return img
    h, s, v = img.convert("HSV").split()
    # The shift is factor*255 truncated toward zero and wrapped into a byte, as torchvision's
    # uint8 addition does; written with Python ints so negative factors also work on NumPy 2.
    shift = int(factor * 255) % 256
    hue = (np.array(h, dtype=np.uint16) + shift) % 256
    h = Image.fromarray(hue.astype(np.uint8))
    return Image.merge("HSV", (h, s, v)).convert(img.mode)


def to_grayscale(img, num_output_channels):
    """Luma (PIL's "L" conversion) with 1 or 3 identical output channels."""
    gray = img.convert("L")
    if num_output_channels == 1:
        return gray
    if num_output_channels == 3:
        arr = np.array(gray, dtype=np.uint8)
        return Image.fromarray(np.dstack([arr, arr, arr]))
    raise ValueError(f"grayscale output needs 1 or 3 channels, got an image with {num_output_channels} (mode {img.mode})")


def gaussian_kernel1d(kernel_size, sigma):
    """float32 [kernel_size], normalised to sum 1."""
    half = (kernel_size - 1) * 0.5
    x = torch.linspace(-half, half, steps=kernel_size)
    pdf = torch.exp(-0.5 * (x / sigma).pow(2))
    return pdf / pdf.sum()


def gaussian_blur(img, kernel_size, sigma):
    """Blur an L/RGB/RGBA image; kernel_size (kx, ky) odd, sigma (sx, sy).

    As torchvision: uint8 -> float32, reflect padding, depthwise conv, round back to uint8.
    """
    if img.mode not in ("L", "RGB", "RGBA"):
        raise ValueError(f"gaussian blur supports images of mode L, RGB or RGBA, got {img.mode!r}")
    kx, ky = kernel_size
    if img.width <= kx // 2 or img.height <= ky // 2:
        raise ValueError(
            f"gaussian blur with kernel {kx}x{ky} needs an image larger than {kx // 2}x{ky // 2} "
            f"(reflect padding), got {img.width}x{img.height}; lower INPUT.GB_K"
        )
    kernel = torch.mm(gaussian_kernel1d(ky, sigma[1])[:, None], gaussian_kernel1d(kx, sigma[0])[None, :])  # [ky, kx]
    channels = len(img.getbands())
    x = torch.from_numpy(np.array(img, dtype=np.uint8)).view(img.height, img.width, channels)
    x = x.permute(2, 0, 1).unsqueeze(0).float()  # [1, C, H, W]
    x = nnf.pad(x, [kx // 2, kx // 2, ky // 2, ky // 2], mode="reflect")
    x = nnf.conv2d(x, kernel.expand(channels, 1, ky, kx), groups=channels)  # [1, C, H, W]
    out = torch.round(x[0]).to(torch.uint8).permute(1, 2, 0).numpy()  # [H, W, C]
    return Image.fromarray(out[:, :, 0] if channels == 1 else out)
