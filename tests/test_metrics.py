"""Evaluation metrics on hand-made image pairs with known answers."""

from pathlib import Path

import numpy as np
import pytest

from fontgen.metrics import (all_metrics, display_metrics, edge_ratio, iou, l1, outline_length, piece_counts, rmse,
                             speck_area, ssim)

SAMPLE = Path(__file__).resolve().parents[1] / "fonts_sample"


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


# --- display size: pieces and edges, on real glyphs drawn at 256 px ---------------------


@pytest.fixture(scope="module")
def real():
    """Real glyphs of the sample source font at display size: 一 (one stroke, rows 115-135),
    三 (three strokes) and 八 (two)."""
    from fontgen.fonts import FontSpec, renderer_for

    if not (SAMPLE / "source_sans_regular.otf").is_file():
        pytest.skip("fonts_sample/ is missing from the checkout")
    renderer = renderer_for(FontSpec(SAMPLE / "source_sans_regular.otf"), 256)
    glyphs = {ch: renderer.render(ch) for ch in "一三八"}
    assert [int(piece_counts(g[None])[0]) for g in glyphs.values()] == [1, 3, 2]
    return glyphs


def pair(edited, original):
    return display_metrics(edited[None], original[None])


def test_speck_threshold_scales_with_the_image():
    assert speck_area(256) == 16 and speck_area(128) == 4 and speck_area(64) == 1
    assert speck_area(512) == 64


def test_a_glyph_against_itself_is_perfect(real):
    stack = np.stack(list(real.values()))
    scores = display_metrics(stack, stack.copy())
    assert np.allclose(scores["iou"], 1) and np.allclose(scores["ssim"], 1) and np.allclose(scores["l1"], 0)
    assert not scores["pieces_more"].any() and not scores["pieces_fewer"].any()
    assert np.array_equal(scores["edge_ratio"], np.ones(3))
    assert list(scores["pieces_generated"]) == list(scores["pieces_real"]) == [1, 3, 2]


def test_a_stroke_cut_in_two_is_more_pieces_and_more_edge(real):
    cut = real["一"].copy()
    cut[:, 120:126] = 255  # a 6 px gap across the stroke
    scores = pair(cut, real["一"])
    assert scores["pieces_generated"][0] == 2 and scores["pieces_real"][0] == 1
    assert scores["pieces_more"][0] == 1 and scores["pieces_fewer"][0] == 0
    assert scores["edge_ratio"][0] > 1.03  # two new stroke ends, about 20 px each, minus 12 px of stroke side
    assert scores["iou"][0] > 0.95  # what IoU alone would let through


def test_a_speck_counts_from_the_threshold_up(real):
    glyph = real["一"]
    big, small, edge = glyph.copy(), glyph.copy(), glyph.copy()
    big[30:36, 30:36] = 0  # 36 px: a speck a designer must clean up
    edge[30:34, 30:34] = 0  # 16 px: exactly speck_area(256), counted
    small[30:33, 30:35] = 0  # 15 px: under the threshold, ignored
    scores = display_metrics(np.stack([big, edge, small]), np.stack([glyph] * 3))
    assert list(scores["pieces_more"]) == [1, 1, 0] and not scores["pieces_fewer"].any()
    assert (scores["edge_ratio"] > 1).all()  # every speck adds outline, counted or not
    assert scores["edge_ratio"][0] > scores["edge_ratio"][2]


def test_merged_strokes_are_fewer_pieces(real):
    three = real["三"].copy()
    ys = np.nonzero((three < 128).any(axis=1))[0]
    three[ys.min():ys.max() + 1, 120:128] = 0  # a bar through all three strokes
    eight = real["八"].copy()
    eight[150:160, 60:200] = 0  # a bar joining the two strokes
    for merged, original in ((three, real["三"]), (eight, real["八"])):
        scores = pair(merged, original)
        assert scores["pieces_fewer"][0] == 1 and scores["pieces_more"][0] == 0
        assert scores["pieces_generated"][0] == 1


def test_a_lost_stroke_is_fewer_pieces_and_less_edge(real):
    lost = real["三"].copy()
    rows = np.nonzero((lost < 128).any(axis=1))[0]
    lost[rows.min():rows.min() + 60] = 255  # the top stroke erased
    scores = pair(lost, real["三"])
    assert scores["pieces_generated"][0] == 2 and scores["pieces_fewer"][0] == 1
    assert scores["edge_ratio"][0] < 0.8


def test_outline_length_follows_the_edge_whatever_its_slope():
    box = np.full((1, 128, 128), 255, np.uint8)
    box[0, 20:60, 10:110] = 0  # 100 x 40 px
    assert outline_length(box)[0] == pytest.approx(280, abs=2)  # corners are cut by under half a pixel each
    yy, xx = np.mgrid[:128, :128]
    diamond = np.where(abs(yy - 64) + abs(xx - 64) <= 40, 0, 255).astype(np.uint8)[None]
    # sides of 40 * sqrt(2) px; a count of boundary pixel edges would read 4 * 2 * 40 = 320
    assert outline_length(diamond)[0] == pytest.approx(4 * 40 * np.sqrt(2), rel=0.03)
    blank = np.full((1, 16, 16), 255, np.uint8)
    assert outline_length(blank)[0] == 0 and edge_ratio(blank, blank)[0] == 1
    with pytest.raises(ValueError):
        display_metrics(box, box[:, :64])
