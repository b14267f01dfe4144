"""Offline glyph-image metrics, as in the font-generation papers: L1, RMSE, SSIM, IoU.

All take uint8 images (0 = ink, 255 = paper) of shape [N, H, W] and return one value per
image, computed on [0, 1] pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

INK_THRESHOLD = 128  # a pixel darker than this is ink when glyphs are binarised


def _unit(images: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(images), dtype=torch.float64) / 255.0


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
    """Wang et al. 2004 SSIM with an 11x11 Gaussian window (sigma 1.5), over the valid region."""
    x = _unit(generated).unsqueeze(1)
    y = _unit(truth).unsqueeze(1)
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(1, 1, window, window)

    def blur(t):
        return F.conv2d(t, kernel)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return score.mean(dim=(1, 2, 3)).numpy()


METRICS = {"l1": l1, "rmse": rmse, "ssim": ssim, "iou": iou}


def all_metrics(generated: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
    if np.shape(generated) != np.shape(truth):
        raise ValueError(f"image stacks differ in shape: {np.shape(generated)} vs {np.shape(truth)}")
    return {name: fn(generated, truth) for name, fn in METRICS.items()}
