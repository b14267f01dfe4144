"""Evaluation metrics on hand-made image pairs with known answers."""

import numpy as np
import pytest

from fontgen.metrics import all_metrics, iou, l1, rmse, ssim


def glyph(size=32):
    image = np.full((size, size), 255, np.uint8)
    image[8:24, 6:10] = 0
    image[14:18, 6:26] = 0
    return image


def test_identical_images_are_perfect():
    a = np.stack([glyph(), 255 - glyph()])
    scores = all_metrics(a, a.copy())
    assert np.allclose(scores["l1"], 0) and np.allclose(scores["rmse"], 0)
    assert np.allclose(scores["ssim"], 1) and np.allclose(scores["iou"], 1)


def test_known_differences():
    white = np.full((1, 16, 16), 255, np.uint8)
    black = np.zeros((1, 16, 16), np.uint8)
    assert l1(white, black)[0] == pytest.approx(1.0) and rmse(white, black)[0] == pytest.approx(1.0)
    assert iou(white, black)[0] == 0.0
    assert iou(white, white)[0] == 1.0  # two empty glyphs agree

    half = white.copy()
    half[0, :, :8] = 0  # left half inked
    assert l1(half, white)[0] == pytest.approx(0.5)
    assert rmse(half, white)[0] == pytest.approx(np.sqrt(0.5))
    quarter = white.copy()
    quarter[0, :8, :8] = 0
    assert iou(half, quarter)[0] == pytest.approx(0.5)

    grey_a = np.full((1, 16, 16), 100, np.uint8)
    grey_b = np.full((1, 16, 16), 110, np.uint8)
    assert l1(grey_a, grey_b)[0] == pytest.approx(10 / 255)
    # constant images: SSIM reduces to its luminance term
    mx, my, c1 = 100 / 255, 110 / 255, 0.01 ** 2
    assert ssim(grey_a, grey_b)[0] == pytest.approx((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1))


def test_ssim_falls_with_distortion_and_shapes_must_match():
    a = glyph()[None]
    shifted = np.roll(a, 2, axis=2)
    noisy = np.clip(a.astype(int) + np.random.default_rng(0).integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(a, shifted)[0] < 0.9
    assert ssim(a, noisy)[0] < 1 and ssim(a, noisy)[0] > ssim(a, 255 - a)[0]
    with pytest.raises(ValueError):
        all_metrics(a, a[:, :16])
