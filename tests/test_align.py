"""Aligning the drawings of several source fonts before the mean (fontgen.align), on real glyphs."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from fontgen.align import MAX_SHIFT, aligned_mean
from fontgen.fonts import Geometry, GlyphRenderer, open_font
from fontgen.repair import pieces

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ink128(sample_styles):
    def draw(style_id, ch):
        spec = sample_styles[style_id]
        image = GlyphRenderer(spec, Geometry.for_font(open_font(spec), 128)).render(ch)
        return 1 - image.astype(np.float32) / 255
    return draw


def _moved(ink, dy, dx):
    return np.roll(ink, (dy, dx), axis=(0, 1))  # the glyphs keep clear of the image edge


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def _pieces(ink):
    return pieces(np.uint8(np.round(255 - 255 * ink)))[1]


@pytest.mark.parametrize("style_id,ch", [(14, "三"), (14, "国"), (3, "三"), (5, "三")])  # Mincho, hairline and black serif
def test_two_drawings_a_stroke_apart_meet_halfway_as_one_glyph(ink128, style_id, ch):
    ink = ink128(style_id, ch)
    drawings = np.stack([ink, _moved(ink, 2, 2)])  # two drawings that disagree by 2 px on every stroke
    halfway = _moved(ink, 1, 1) > 0.5
    plain = drawings.mean(0)
    aligned = aligned_mean(torch.from_numpy(drawings)[:, None], [1, 1])[0].numpy()
    assert _iou(aligned > 0.5, halfway) > 0.95  # one stroke at the mean place ...
    assert _iou(plain > 0.5, halfway) < 0.85  # ... where the plain mean has two grey ones (0.44-0.77)
    assert _pieces(aligned) == _pieces(ink)
    grey = lambda x: ((x > 0.25) & (x < 0.75)).sum() / (x > 0.25).sum()  # noqa: E731
    assert grey(aligned) < 0.6 * grey(plain)


@pytest.mark.parametrize("ch", ["永", "国", "三"])
def test_drawings_of_other_fonts_are_moved_a_little_never_redrawn(ink128, ch):
    """One character from three fonts (Mincho, serif bold, Ming): nothing is drawn further than MAX_SHIFT
    from ink of some drawing, no stroke is squeezed away, and it breaks into no more pieces than the mean."""
    drawings = np.stack([ink128(14, ch), ink128(4, ch), ink128(6, ch)])
    aligned = aligned_mean(torch.from_numpy(drawings)[:, None], [2, 1, 1])[0].numpy()
    reach = int(np.ceil(MAX_SHIFT * 128)) + 1
    near_some_ink = ndimage.binary_dilation((drawings > 0.25).any(0), iterations=reach)
    assert (aligned > 0.25).any() and not ((aligned > 0.25) & ~near_some_ink).any()
    weighted = (2 * drawings[0] + drawings[1] + drawings[2]) / 4
    assert (aligned > 0.5).sum() > 0.95 * (weighted > 0.5).sum()  # no stroke squeezed away
    assert _pieces(aligned) <= _pieces(weighted)


def test_one_drawing_or_none_is_returned_as_it_is(ink128):
    ink = torch.from_numpy(ink128(14, "永"))[None, None]
    assert torch.equal(aligned_mean(ink, [2]), ink[0])
    assert aligned_mean(torch.zeros(3, 0, 64, 64), [2, 1, 1]).shape == (0, 64, 64)
