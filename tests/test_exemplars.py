"""Redrawing glyphs from the target font's own glyphs (fontgen.exemplars), on real fonts."""

import numpy as np
import pytest
import torch

from fontgen import exemplars
from fontgen.exemplars import Exemplars, font_exemplars, redraw
from fontgen.fonts import Geometry, GlyphRenderer, open_font

pytestmark = pytest.mark.usefixtures("one_thread")

MINCHO = 14
SIZE = 64


def _geometry(spec):
    return Geometry.for_font(open_font(spec), SIZE)


def _render(spec, chars):
    renderer = GlyphRenderer(spec, _geometry(spec))
    return np.stack([renderer.render(ch) for ch in chars])


def _iou(a, b):
    a, b = a < 128, b < 128
    return (a & b).sum((1, 2)) / (a | b).sum((1, 2))


@pytest.fixture(scope="module")
def mincho_bank(sample_styles, sample_source):
    spec = sample_styles[MINCHO]
    return font_exemplars(spec, _geometry(spec), [(sample_source, _geometry(sample_source))], exclude=HELD_OUT)


HELD_OUT = list("湖沸晴江治洗晒妨")  # characters whose components the sample Mincho has in other characters


def test_the_bank_is_the_fonts_own_ideographs_that_the_source_draws(mincho_bank, sample_chars):
    cps = set(mincho_bank.codepoints.tolist())
    assert len(mincho_bank) > 500 and mincho_bank.ink.shape[1:] == (SIZE, SIZE)
    assert not cps & {ord(ch) for ch in HELD_OUT}  # what is being drawn is never lent
    assert cps <= {ord(ch) for ch in sample_chars}  # the sample fonts hold fonts_sample's characters only
    assert int(mincho_bank.ink.max()) == 255 and int(mincho_bank.ink.min()) == 0 and mincho_bank.ink.dtype == torch.uint8


def test_another_fonts_drawing_moves_towards_how_the_font_draws_it(mincho_bank, sample_styles, sample_source):
    """A stand-in for a model's drawing: the same characters from a Ming font (style 6). Redrawn from the
    Mincho's own glyphs, the result is nearer the Mincho's real glyph than the Ming drawing was."""
    real = _render(sample_styles[MINCHO], HELD_OUT)
    drawing = _render(sample_styles[6], HELD_OUT)
    source = _render(sample_source, HELD_OUT)
    result = redraw(drawing, source, [ord(ch) for ch in HELD_OUT], mincho_bank, bf16=False)
    before, after = _iou(drawing, real), _iou(result, real)
    assert (after > before).all() and after.mean() > before.mean() + 0.02, (before, after)  # 0.41 -> 0.45
    # a blend, not a replacement: every stroke of the drawing keeps at least half its ink
    assert ((255 - result.astype(int)) >= 0.5 * (255 - drawing.astype(int)) - 2).all()


def test_a_glyph_never_copies_its_own_character(sample_styles, sample_source):
    spec = sample_styles[MINCHO]
    chars = list("湖沸晴江治洗晒妨三国")
    bank = Exemplars.from_images(_render(spec, chars), _render(sample_source, chars), [ord(ch) for ch in chars])
    without = Exemplars.from_images(_render(spec, chars[1:]), _render(sample_source, chars[1:]),
                                    [ord(ch) for ch in chars[1:]])
    drawing = _render(sample_styles[6], chars[:1])
    source = _render(sample_source, chars[:1])
    own = redraw(drawing, source, [ord(chars[0])], bank, bf16=False)
    assert np.array_equal(own, redraw(drawing, source, [ord(chars[0])], without, bf16=False))
    # told it is another character, the same bank hands the real glyph back: the exclusion is what stops it
    copied = redraw(drawing, source, [ord("一")], bank, bf16=False)
    real = _render(spec, chars[:1])
    assert _iou(copied, real)[0] > _iou(own, real)[0] + 0.05


def test_every_source_font_is_matched_the_primary_standing_in_where_one_lacks_a_character(
        sample_styles, sample_source, sample_chars):
    """A second source font (the sample Song, which lacks ~22% of the characters) is a third channel of
    every exemplar's match; where it lacks the character, the primary's glyph stands in (as render
    stores it). A drawing must come with the same source fonts the bank was matched on."""
    spec, song = sample_styles[MINCHO], sample_styles[9]
    sources = [(sample_source, _geometry(sample_source)), (song, _geometry(song))]
    bank = font_exemplars(spec, _geometry(spec), sources, exclude=HELD_OUT)
    assert bank.views == 2 and bank.features.shape[1:] == (3, exemplars.MATCH_SIZE, exemplars.MATCH_SIZE)
    song_has = set(open_font(song).getBestCmap())
    chars = [chr(cp) for cp in bank.codepoints.tolist()]
    lacking = [i for i, ch in enumerate(chars) if ord(ch) not in song_has]
    having = [i for i, ch in enumerate(chars) if ord(ch) in song_has]
    assert lacking and having
    primary = bank.features[:, 1] / exemplars.SOURCE_WEIGHT
    song_drawn = bank.features[:, 2] / exemplars.OTHER_SOURCE_WEIGHT
    assert torch.allclose(song_drawn[lacking], primary[lacking])  # the primary's glyph stands in
    assert (song_drawn[having] - primary[having]).abs().mean() > 0.01  # the Song's own drawing
    drawing = _render(sample_styles[6], HELD_OUT)
    views = np.stack([_render(sample_source, HELD_OUT), _render(song, HELD_OUT)])
    codepoints = [ord(ch) for ch in HELD_OUT]
    result = redraw(drawing, views, codepoints, bank, bf16=False)
    real = _render(spec, HELD_OUT)
    assert _iou(result, real).mean() > _iou(drawing, real).mean() + 0.02
    with pytest.raises(ValueError, match="2 source font"):
        redraw(drawing, views[0], codepoints, bank)


def test_bf16_ranking_draws_what_fp32_draws(mincho_bank, sample_styles, sample_source):
    drawing = _render(sample_styles[6], HELD_OUT)
    source = _render(sample_source, HELD_OUT)
    codepoints = [ord(ch) for ch in HELD_OUT]
    exact = redraw(drawing, source, codepoints, mincho_bank, bf16=False).astype(int)
    fast = redraw(drawing, source, codepoints, mincho_bank, bf16=True).astype(int)
    assert np.abs(exact - fast).mean() < 2  # near ties may rank apart; the drawing stays the same glyph


def test_too_few_exemplars_leave_the_drawing_as_it_is(sample_styles, sample_source):
    chars = list("三国")
    few = Exemplars.from_images(_render(sample_styles[MINCHO], chars), _render(sample_source, chars),
                                [ord(ch) for ch in chars])
    assert len(few) <= exemplars.NEIGHBOURS
    drawing = _render(sample_styles[6], ["永"])
    assert np.array_equal(redraw(drawing, _render(sample_source, ["永"]), [ord("永")], few), drawing)


@pytest.mark.parametrize("window", [exemplars.SMALL_WINDOW, exemplars.LARGE_WINDOW])
@pytest.mark.parametrize("size", [64, 96, 128])
def test_the_lent_windows_cover_every_pixel_at_every_window_size(window, size, monkeypatch):
    """At every window size the bank's size may pick and every model size, the windows tile the whole
    glyph square: a pixel no window reaches would come back as paper. A bank all ink, a drawing all
    ink: all ink."""
    monkeypatch.setattr(exemplars, "window_for", lambda lent: window)
    bank = Exemplars.from_images(np.zeros((8, size, size), dtype=np.uint8), np.zeros((8, 8, 8), dtype=np.uint8),
                                 range(8))
    result = redraw(np.zeros((2, size, size), dtype=np.uint8), np.zeros((2, 8, 8), dtype=np.uint8), [-1, -2],
                    bank, bf16=False)
    assert result.max() == 0


def test_the_window_grows_with_the_bank():
    """A quarter of the glyph for a few hundred lent glyphs, larger for thousands (whole components
    match only in a large bank); even, so that windows every STRIDE px end at the glyph's edge."""
    sizes = [exemplars.window_for(n) for n in (0, 300, 1_000, 3_000, 10_000, 100_000)]
    assert sizes == sorted(sizes) and sizes[0] == exemplars.SMALL_WINDOW == exemplars.MATCH_SIZE // 4
    assert sizes[-1] > sizes[0] and all(size % exemplars.STRIDE == 0 for size in sizes)
