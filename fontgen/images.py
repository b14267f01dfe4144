"""Glyph pixels <-> model tensors, one definition for train, generate and evaluate.

Stored glyphs are uint8 (0 = ink, 255 = paper); the networks see [-1, 1] floats, one
channel, at the model's image size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def to_model(images, image_size: int, device) -> torch.Tensor:
    """uint8 [B, S, S] (numpy or tensor) -> float [B, 1, image_size, image_size] in [-1, 1] on `device`.

    The uint8 batch travels to the device as is (a quarter of the bytes of float32) and is
    converted there. Resampling is symmetric about pixel centres, so pixel edges, and with
    them the em-box transform, simply scale.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.from_numpy(np.array(images, dtype=np.uint8))  # a copy: memmaps are read-only
    batch = images.to(device, non_blocking=True).unsqueeze(1).float().div_(127.5).sub_(1.0)
    if batch.shape[-1] != image_size:
        batch = resize(batch, image_size)
    return batch


def resize(batch: torch.Tensor, image_size: int) -> torch.Tensor:
    """The one resampling of glyph batches (training, generation, evaluation alike)."""
    return F.interpolate(batch, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)


def from_model(batch: torch.Tensor) -> np.ndarray:
    """float [B, 1, s, s] in [-1, 1] -> uint8 [B, s, s]."""
    return ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).cpu().numpy()


def ink_components(image: np.ndarray, min_pixels: int = 3) -> int:
    """Connected pieces of ink (8-connected, darker than mid-grey), ignoring specks."""
    labels, count = ndimage.label(np.asarray(image) < 128, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= min_pixels).sum())
