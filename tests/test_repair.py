"""Post-generation repair (fontgen.repair) on real glyph images from fonts_sample."""

import numpy as np
import pytest

from fontgen.fonts import Geometry, GlyphRenderer, open_font
from fontgen.repair import join_broken_strokes, pieces


@pytest.fixture(scope="module")
def render64(sample_styles):
    def draw(style_id, ch):
        spec = sample_styles[style_id]
        return GlyphRenderer(spec, Geometry.for_font(open_font(spec), 64)).render(ch)
    return draw


def _break_stroke(image, row_band, col, width, value):
    """Cut the horizontal stroke that crosses column `col` inside rows `row_band`: `width` columns set to `value`."""
    broken = np.array(image)
    rows = [r for r in range(*row_band) if image[r, col] < 128]
    assert rows, "no stroke there"
    for r in range(min(rows) - 1, max(rows) + 2):
        broken[r, col:col + width] = np.maximum(broken[r, col:col + width], value)
    return broken, rows


def _middle_stroke(image):
    """Row band of the second of the three horizontals of 三 (rows that have ink in the centre column)."""
    col = image.shape[1] // 2
    ink_rows = np.flatnonzero(image[:, col] < 128)
    bands = np.split(ink_rows, np.flatnonzero(np.diff(ink_rows) > 1) + 1)
    assert len(bands) == 3, "三 has three horizontals"
    middle = bands[1]
    return (int(middle[0]), int(middle[-1]) + 1), col


@pytest.mark.parametrize("style_id", [3, 9])  # serif extralight, Song: hairline horizontals
def test_broken_thin_stroke_is_joined(render64, style_id):
    real = render64(style_id, "三")
    _, want = pieces(real)
    band, col = _middle_stroke(real)
    # the generator's typical break: the ink fades to a pale grey for 2 px across the stroke
    broken, rows = _break_stroke(real, band, col, 2, 175)
    assert pieces(broken)[1] == want + 1
    fixed, joins = join_broken_strokes(broken, want)
    assert joins == 1 and pieces(fixed)[1] == want
    changed = np.argwhere(fixed != broken)
    assert len(changed) <= 3  # a hairline bridge, nothing else thickens
    assert all(col - 1 <= c <= col + 2 and min(rows) - 1 <= r <= max(rows) + 1 for r, c in changed)


def test_gap_through_paper_is_not_bridged(render64):
    """A break the generator left as paper is not drawn in: the repair never invents ink."""
    real = render64(3, "三")
    _, want = pieces(real)
    band, col = _middle_stroke(real)
    broken, _ = _break_stroke(real, band, col, 2, 255)
    fixed, joins = join_broken_strokes(broken, want)
    assert joins == 0 and np.array_equal(fixed, broken)


@pytest.mark.parametrize("style_id,ch", [(3, "三"), (9, "三"), (1, "八"), (7, "八")])
def test_real_gaps_between_strokes_are_kept(render64, style_id, ch):
    """Separate strokes stay separate even when asked to reach one piece: real gaps are paper."""
    real = render64(style_id, ch)
    assert pieces(real)[1] >= 2
    fixed, joins = join_broken_strokes(real, want=1)
    assert joins == 0 and np.array_equal(fixed, real)


def test_never_below_the_source_count(render64):
    """Two breaks, but the source has only one piece more than the broken glyph needs: one join."""
    real = render64(3, "三")
    _, want = pieces(real)
    band, col = _middle_stroke(real)
    broken, _ = _break_stroke(real, band, col - 10, 2, 175)
    broken, _ = _break_stroke(broken, band, col + 10, 2, 175)
    assert pieces(broken)[1] == want + 2
    fixed, joins = join_broken_strokes(broken, want + 1)
    assert joins == 1 and pieces(fixed)[1] == want + 1
    fixed, joins = join_broken_strokes(broken, want)
    assert joins == 2 and pieces(fixed)[1] == want
