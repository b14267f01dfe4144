"""Offline glyph-image metrics, as in the font-generation papers: L1, RMSE, SSIM, IoU; and, for
glyphs at display size, pieces of ink and outline length (`display_metrics`).

All take uint8 images (0 = ink, 255 = paper) of shape [N, H, W] and return one value per
image, computed on [0, 1] pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

INK_THRESHOLD = 128  # a pixel darker than this is ink when glyphs are binarised


def _unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images, dtype=np.float64)) / 255.0  # a copy: rendered glyphs are read-only


def l1(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return (_unit(generated) - _unit(truth)).abs().mean(dim=(1, 2)).numpy()


def rmse(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return (_unit(generated) - _unit(truth)).pow(2).mean(dim=(1, 2)).sqrt().numpy()


def iou(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Intersection over union of the binarised ink; two empty images agree perfectly."""
    a = np.asarray(generated) < INK_THRESHOLD
    b = np.asarray(truth) < INK_THRESHOLD
    inter = (a & b).sum(axis=(1, 2))
    union = (a | b).sum(axis=(1, 2))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def ssim(generated: np.ndarray, truth: np.ndarray, sigma: float = 1.5, window: int = 11) -> np.ndarray:
    """Wang et al. 2004 SSIM with an 11x11 Gaussian window (sigma 1.5), over the valid region.

    The Gaussian is applied as two 1-D passes in float64 (scipy): the same sums as the 2-D
    window, about 5 ms a 256 px glyph on one core.
    """
    x = np.asarray(generated, dtype=np.float64) / 255.0
    y = np.asarray(truth, dtype=np.float64) / 255.0
    coords = np.arange(window, dtype=np.float64) - (window - 1) / 2
    g = np.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    half = window // 2

    def blur(t):
        t = ndimage.correlate1d(ndimage.correlate1d(t, g, axis=-2, mode="constant"), g, axis=-1, mode="constant")
        return t[..., half:t.shape[-2] - half, half:t.shape[-1] - half]

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return score.mean(axis=(-2, -1))


METRICS = {"l1": l1, "rmse": rmse, "ssim": ssim, "iou": iou}


def all_metrics(generated: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    if np.shape(generated) != np.shape(truth):
        raise ValueError(f"image stacks differ in shape: {np.shape(generated)} vs {np.shape(truth)}")
    return {name: fn(generated, truth) for name, fn in METRICS.items()}


# ---------------------------------------------------------------------------------------
# Display size: what a designer sees (evaluate's "display" block)
#
# The glyphs compared here are the traced outline drawn at display size (256 px em box) and
# the real glyph drawn by FreeType the same way, both anti-aliased uint8 (0 = ink). Besides
# IoU, SSIM and L1 they are compared for structure: a clean-looking outline that lost or
# broke a stroke must not pass, so pieces and outline length are counted per glyph.

DISPLAY_SIZE = 256  # px: the em box at which evaluate draws outlines and real glyphs
SPECK_FRACTION = 1 / 4096  # pieces of ink smaller than this share of the image are specks


def speck_area(image_size: int) -> int:
    """Smallest piece of ink (8-connected pixels) that counts as a piece, for an image size.

    1/4096 of the image: 16 px at 256 px (a 4x4 px dot, 1/64 em wide), 4 px at 128, 1 px at
    64 (every piece). Smaller specks are hard to see at text sizes and FreeType's anti-aliasing
    can leave them on hairlines; anything larger is ink a designer has to clean up. The tracer
    itself drops specks under 3 px^2 at the model's size (`TraceOptions.min_speck_area`), which
    is 48 px^2 at 256 px from a 64 px model: whatever it keeps is counted.
    """
    return max(1, round(image_size * image_size * SPECK_FRACTION))


def piece_counts(images: np.ndarray, min_area: int | None = None) -> np.ndarray:
    """Pieces of ink per image: 8-connected components of pixels darker than mid-grey,
    ignoring specks under `min_area` pixels (default `speck_area` of the image size)."""
    from fontgen.images import ink_components

    images = np.asarray(images)
    min_area = speck_area(images.shape[-1]) if min_area is None else int(min_area)
    return np.array([ink_components(image, min_pixels=min_area) for image in images], dtype=np.int64)


def outline_length(images: np.ndarray) -> np.ndarray:
    """Length in pixels of each image's ink outline: all closed 50%-ink contours (outer
    edges and holes, specks included), found by marching squares on the anti-aliased
    pixels (`tracing.iso_contours`, linear sub-pixel crossings), summed as polylines.

    On anti-aliased images this follows the drawn edge to within a fraction of a pixel, so a
    straight edge measures its true length whatever its slope (a boundary-pixel count would
    read a 45-degree edge 41% long) and real and generated glyphs are measured alike.
    """
    from fontgen.tracing import iso_contours

    lengths = []
    for image in np.asarray(images):
        ink = 1.0 - np.asarray(image, dtype=np.float64) / 255.0
        total = 0.0
        for contour in iso_contours(ink, 0.5):
            total += float(np.hypot(*(np.roll(contour, -1, axis=0) - contour).T).sum())
        lengths.append(total)
    return np.array(lengths)


def edge_ratio(generated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Outline length of the generated glyph over the real glyph's (`outline_length`).

    1 = as much edge as the real glyph; > 1 = rough or wavy edges, specks, strokes broken
    apart (each break adds two edges); < 1 = strokes, serifs or holes lost. Two blank images
    agree (1); against a blank real image the real outline counts as 1 px, so the ratio stays
    finite.
    """
    ours, real = outline_length(generated), outline_length(truth)
    return np.where((ours == 0) & (real == 0), 1.0, ours / np.maximum(real, 1.0))


DISPLAY_METRICS = ("iou", "ssim", "l1", "pieces_more", "pieces_fewer", "edge_ratio")


def display_metrics(generated: np.ndarray, truth: np.ndarray, min_area: int | None = None) -> dict[str, np.ndarray]:
    """Per-glyph display-size scores of generated outlines against real glyphs (uint8 [N, H, W]).

    iou, ssim, l1 as above; pieces_generated / pieces_real (`piece_counts`, specks under
    `min_area` ignored); pieces_more / pieces_fewer: 1.0 where the generated ink falls into
    more pieces than the real glyph's (broken strokes, specks) / fewer (strokes merged), else
    0.0, so their means are shares of glyphs; edge_ratio (`edge_ratio`).
    """
    if np.shape(generated) != np.shape(truth):
        raise ValueError(f"image stacks differ in shape: {np.shape(generated)} vs {np.shape(truth)}")
    ours, real = piece_counts(generated, min_area), piece_counts(truth, min_area)
    return {"iou": iou(generated, truth), "ssim": ssim(generated, truth), "l1": l1(generated, truth),
            "pieces_more": (ours > real).astype(np.float64), "pieces_fewer": (ours < real).astype(np.float64),
            "edge_ratio": edge_ratio(generated, truth), "pieces_generated": ours, "pieces_real": real}
