"""vectorize: glyph images -> outlines -> verified TTF, on the real sample fonts (CPU, fast)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont
from PIL import Image

from fontgen.errors import FontgenError
from fontgen.fonts import FontSpec, Geometry, GlyphRenderer, open_font
from fontgen import vectorize as V
from fontgen import tracing as T
from fontgen import fontwriter as W

SAMPLE = Path(__file__).resolve().parents[1] / "fonts_sample"
pytestmark = pytest.mark.skipif(not (SAMPLE / "manifest.json").is_file(),
                                reason="fonts_sample/ (the real sample fonts) is missing from the checkout")

SOURCE = "source_sans_regular.otf"  # CFF, covers the whole sample charset
KAI = "style07_kai_ukai.ttf"  # TrueType
THIN = "style00_sans_thin.otf"  # CFF target
ROUND_TRIP = "口回国永田一家飞日目四图八雨乡主鸟"  # holes, nested holes, thin strokes, dots


def spec(name: str) -> FontSpec:
    return FontSpec(SAMPLE / name)


def write_folder(font_name: str, chars: str, folder: Path, size: int = 256, style_id: int = 7,
                 manifest: bool = True) -> Geometry:
    """Render chars in the font's em-box geometry as a generated-glyph folder."""
    font = open_font(spec(font_name))
    geometry = Geometry.for_font(font, size)
    renderer = GlyphRenderer(spec(font_name), geometry)
    cmap = font.getBestCmap()
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for ch in chars:
        assert ord(ch) in cmap, f"{font_name} lacks {ch}"
        name = f"u{ord(ch):04X}.png"
        Image.fromarray(renderer.render(ch)).save(folder / name)
        entries.append({"char": ch, "codepoint": ord(ch), "file": name, "flags": []})
    if manifest:
        (folder / "manifest.json").write_text(json.dumps({
            "format": "fontgen-glyphs", "version": 1,
            "style": {"id": style_id, "name": "test", "family": "Fontgen Test"},
            "geometry": geometry.to_dict(), "target_font": None, "glyphs": entries}, ensure_ascii=False))
    return geometry


def contour_count(font: TTFont, ch: str) -> int:
    pen = RecordingPen()
    font.getGlyphSet()[font.getBestCmap()[ord(ch)]].draw(pen)
    return sum(1 for op, _ in pen.value if op == "closePath")


def signed_area(coords, end_pts, index):
    start = 0 if index == 0 else end_pts[index - 1] + 1
    pts = np.array(coords[start:end_pts[index] + 1], dtype=float)
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    """Standalone fonts traced from the CFF source font and from the TrueType kai font."""
    results = {}
    for name in (SOURCE, KAI):
        folder = tmp_path_factory.mktemp(Path(name).stem)
        write_folder(name, ROUND_TRIP, folder / "glyphs")
        results[name] = V.vectorize_folder(folder / "glyphs", out=folder / "out" / "test.ttf", workers=1,
                                           progress=False)
    return results


@pytest.mark.parametrize("name", [SOURCE, KAI])
def test_round_trip_fidelity_and_validity(round_trips, name):
    result = round_trips[name]
    assert result.glyphs == len(ROUND_TRIP)
    assert result.iou_mean >= 0.97, result.summary()
    assert result.iou_worst >= 0.94, result.summary()
    assert result.font_path.is_file() and result.specimen_path.is_file()
    assert not list(result.font_path.parent.glob(".*.tmp*"))  # the temp file is gone
    font = TTFont(str(result.font_path))
    cmap = font.getBestCmap()
    for ch in ROUND_TRIP:
        assert cmap[ord(ch)] == f"uni{ord(ch):04X}"
    # both cmap formats, CJK metrics, post 3, vertical metrics
    assert {(t.platformID, t.platEncID, t.format) for t in font["cmap"].tables} >= {(3, 1, 4), (3, 10, 12)}
    assert font["head"].unitsPerEm == 1000
    assert font["post"].formatType == 3.0
    os2 = font["OS/2"]
    assert os2.sTypoAscender - os2.sTypoDescender == 1000
    assert os2.ulCodePageRange1 & (1 << 18) and os2.ulUnicodeRange2 & (1 << (59 - 32))
    assert "vhea" in font and "vmtx" in font
    assert all(font["hmtx"][g][0] == 1000 and font["vmtx"][g][0] == 1000 for g in font.getGlyphOrder())
    assert font["name"].getDebugName(1) == "Fontgen Test fontgen"
    assert os2.usWinAscent >= font["head"].yMax and os2.usWinDescent >= -font["head"].yMin


@pytest.mark.parametrize("name", [SOURCE, KAI])
def test_contour_counts_and_directions(round_trips, name):
    written = TTFont(str(round_trips[name].font_path))
    source = open_font(spec(name))
    for ch in "口回日目田":
        glyph = written["glyf"][written.getBestCmap()[ord(ch)]]
        assert glyph.numberOfContours == contour_count(source, ch), ch
    glyph = written["glyf"]["uni53E3"]  # 口: outer clockwise, hole counter-clockwise (y up)
    coords, ends = list(glyph.coordinates), glyph.endPtsOfContours
    areas = sorted((signed_area(coords, ends, i) for i in range(len(ends))), key=abs)
    assert areas[-1] < 0 < areas[0]


def test_trace_glyph_points_and_specks():
    img = np.full((64, 64), 255, np.uint8)
    img[10:50, 10:50] = 0
    img[20:40, 20:40] = 255  # a hole
    img[2, 2] = 0  # a one-pixel speck
    geometry = V.geometry_from_options(64, 1000)
    contours = V.trace_glyph(img, geometry, V.TraceOptions(min_speck_area=3))
    assert len(contours) == 2
    # corners stay sharp: a square traces to 4 on-curve points, near the true corners
    outer = max(contours, key=len)
    assert len(outer) == 4 and all(on for _, _, on in outer)
    xs = sorted(round(x) for x, _, _ in outer)
    assert abs(xs[0] - 10 * 1000 / 64) <= 4 and abs(xs[-1] - 50 * 1000 / 64) <= 4
    assert len(V.trace_glyph(img, geometry, V.TraceOptions(min_speck_area=0.1))) == 3


def test_smooth_calms_ragged_edges():
    """GAN output has ragged edges: --smooth traces them with fewer points, the shape kept."""
    rng = np.random.default_rng(0)
    img = np.full((64, 64), 255, np.uint8)
    for y in range(12, 52):
        left, right = 12 + rng.integers(-1, 2), 40 + rng.integers(-1, 2)
        img[y, left:right] = 0
    img[12:52] = np.where(rng.random((40, 64)) < 0.05, 128, img[12:52]).astype(np.uint8)
    geometry = V.geometry_from_options(64, 1000)
    raw = V.trace_glyph(img, geometry, V.TraceOptions())
    smooth = V.trace_glyph(img, geometry, V.TraceOptions(smooth=1.0))
    assert len(smooth) == 1
    assert sum(map(len, smooth)) < 0.7 * sum(map(len, raw))
    xs = [x for x, _, _ in smooth[0]]
    assert abs(min(xs) - 12 * 1000 / 64) < 40 and abs(max(xs) - 40 * 1000 / 64) < 40
    with pytest.raises(FontgenError):
        V.TraceOptions(smooth=-1)


@pytest.mark.parametrize("name, budget", [(SOURCE, 45), (KAI, 115)])
def test_round_trip_point_budget(round_trips, name, budget):
    # quadratic splines fitted directly (implied on-curve points are free): about 38 and
    # 99 points per glyph; the cubic + cu2qu tracer needed 52 and 112
    result = round_trips[name]
    assert (result.on_points + result.off_points) / result.glyphs <= budget, result.summary()


def test_smooth_closed_contour_is_one_off_curve_spline():
    size, ss = 128, 4
    yy, xx = (np.mgrid[0:size * ss, 0:size * ss] + 0.5) / ss
    cov = ((xx - 64) ** 2 + (yy - 60) ** 2 <= 40 ** 2).reshape(size, ss, size, ss).mean(axis=(1, 3))
    img = np.round(255 * (1 - cov)).astype(np.uint8)
    contours = T.trace_quadratic_px(img)
    assert len(contours) == 1
    (c,) = contours
    assert 4 <= len(c) <= 10 and not any(on for _, _, on in c)  # on-curve points all implied
    back = T.rasterize_polygons([T.flatten_contour(c)], size, 4)
    assert T.ink_iou(img < 128, back >= 0.5) >= 0.99
    glyph = T.contours_to_glyph(V.trace_glyph(img, V.geometry_from_options(size, 1000)))
    assert glyph.numberOfContours == 1 and len(glyph.coordinates) == len(c)
    assert not any(f & 1 for f in glyph.flags)


def test_merge_into_truetype_keeps_old_glyphs(tmp_path):
    target = open_font(spec(KAI), lazy=False)
    cmap = target.getBestCmap()
    new_chars = "丑乙亮兄"
    assert not any(ord(c) in cmap for c in new_chars)
    write_folder(SOURCE, new_chars + "口", tmp_path / "g")  # 口 exists in the target: skipped
    out = tmp_path / "merged.ttf"
    before = (SAMPLE / KAI).read_bytes()
    result = V.vectorize_folder(tmp_path / "g", out=out, merge_into=str(SAMPLE / KAI), workers=1, progress=False)
    assert (SAMPLE / KAI).read_bytes() == before  # input untouched
    assert result.glyphs == 4 and result.skipped == [ord("口")]
    assert result.iou_worst >= 0.94
    merged = TTFont(str(out))
    mcmap = merged.getBestCmap()
    for ch in "口国永":
        name = cmap[ord(ch)]
        assert mcmap[ord(ch)] == name
        old, new = target["glyf"][name], merged["glyf"][name]
        assert old.numberOfContours == new.numberOfContours
        assert list(old.coordinates) == list(new.coordinates) and list(old.flags) == list(new.flags)
        assert target["hmtx"][name] == merged["hmtx"][name]
        assert target["vmtx"][name] == merged["vmtx"][name]
    advance = target["hmtx"][cmap[ord("国")]][0]
    for ch in new_chars:
        name = mcmap[ord(ch)]
        assert name == f"uni{ord(ch):04X}" and merged["glyf"][name].numberOfContours > 0
        assert merged["hmtx"][name][0] == advance
        assert merged["vmtx"][name][0] == target["vmtx"][cmap[ord("国")]][0]
    assert len(merged.getGlyphOrder()) == len(target.getGlyphOrder()) + 4
    assert merged["maxp"].numGlyphs == len(merged.getGlyphOrder())


def test_merge_into_cff_converts_and_replace(tmp_path):
    target = open_font(spec(THIN), lazy=False)
    cmap = target.getBestCmap()
    write_folder(SOURCE, "丁九口", tmp_path / "g")
    out = tmp_path / "thin-merged.ttf"
    result = V.vectorize_folder(tmp_path / "g", out=out, merge_into=str(SAMPLE / THIN), replace=True,
                                workers=1, progress=False, to_truetype=True)  # explicit: CFF stays CFF otherwise
    assert any("CFF" in note for note in result.notes)
    merged = TTFont(str(out))
    assert "glyf" in merged and "CFF " not in merged and merged.sfntVersion == "\x00\x01\x00\x00"
    mcmap = merged.getBestCmap()
    assert mcmap[ord("口")] != cmap[ord("口")]  # --replace: 口 now maps to the traced glyph
    assert mcmap[ord("国")] == cmap[ord("国")]
    name = cmap[ord("国")]
    assert merged["hmtx"][name][0] == target["hmtx"][name][0]
    from fontTools.pens.boundsPen import BoundsPen
    pen = BoundsPen(target.getGlyphSet())
    target.getGlyphSet()[name].draw(pen)
    g = merged["glyf"][name]
    assert np.allclose(pen.bounds, (g.xMin, g.yMin, g.xMax, g.yMax), atol=2)


@pytest.mark.parametrize("case, expect", [
    ("empty", "u4E00.png"), ("blank", "blank"), ("size", "u4E8C.png"), ("notpng", "u4E8C.png"),
    ("badname", "hello.png"), ("lowercase", "u4e8c.png"), ("nothing", "no glyph images"),
])
def test_bad_inputs_name_the_file(tmp_path, case, expect):
    folder = tmp_path / "g"
    write_folder(SOURCE, "一", folder)
    if case == "empty":
        (folder / "u4E00.png").write_bytes(b"")
    elif case == "blank":
        Image.new("L", (256, 256), 255).save(folder / "u4E8C.png")
    elif case == "size":
        Image.new("L", (128, 128), 0).save(folder / "u4E8C.png")
    elif case == "notpng":
        Image.new("L", (256, 256), 0).save(folder / "u4E8C.png", format="JPEG")
    elif case == "badname":
        Image.new("L", (256, 256), 0).save(folder / "hello.png")
    elif case == "lowercase":
        Image.new("L", (256, 256), 0).save(folder / "u4e8c.png")
    elif case == "nothing":
        for p in folder.iterdir():
            p.unlink()
        (folder / "manifest.json").write_text("{}")
    with pytest.raises(FontgenError, match=expect):
        V.vectorize_folder(folder, out=tmp_path / "x.ttf", workers=1, progress=False)
    assert not (tmp_path / "x.ttf").exists()


def test_plain_folder_needs_geometry(tmp_path):
    folder = tmp_path / "plain"
    geometry = write_folder(KAI, "口国", folder, manifest=False)
    with pytest.raises(FontgenError, match="--units-per-em"):
        V.vectorize_folder(folder, out=tmp_path / "x.ttf", workers=1, progress=False)
    em_top = geometry.em_top
    result = V.vectorize_folder(folder, out=tmp_path / "x.ttf", units_per_em=geometry.units_per_em, em_top=em_top,
                                workers=1, progress=False)
    assert result.geometry_source == "command line" and result.iou_worst >= 0.94


def test_cli(tmp_path):
    from fontgen.cli import cli

    runner = CliRunner()
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("L", (64, 64), 0).save(bad / "oops.png")
    res = runner.invoke(cli, ["--workdir", str(tmp_path / "wd"), "vectorize", str(bad), "--units-per-em", "1000"])
    assert res.exit_code == 1
    assert "oops.png" in (res.output + str(res.exception))
    good = tmp_path / "wd" / "generated" / "style-7"
    write_folder(KAI, "口回", good)
    res = runner.invoke(cli, ["--workdir", str(tmp_path / "wd"), "vectorize", "--workers", "2"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "IoU mean" in res.output
    assert (tmp_path / "wd" / "fonts" / "fontgen-test-fontgen-style-7.ttf").is_file()


def test_compiled_solvers_match_numpy():
    rng = np.random.default_rng(0)
    n = 9
    G = rng.normal(size=(n + 8, n))
    A = G.T @ G + np.eye(n)
    A[np.abs(np.subtract.outer(np.arange(n), np.arange(n))) > 2] = 0  # pentadiagonal, still SPD
    A += 3 * np.eye(n)
    R = rng.normal(size=(n, 2))
    band = np.zeros((n, 5))
    for i in range(n):
        for d in range(5):
            if 0 <= i + d - 2 < n:
                band[i, d] = A[i, i + d - 2]
    rx, ry = R[:, 0].copy(), R[:, 1].copy()
    T._nb_solve_band(band, rx, ry)
    assert np.allclose(np.column_stack([rx, ry]), np.linalg.solve(A, R))
    D = rng.normal(size=(n, n))
    rx, ry = R[:, 0].copy(), R[:, 1].copy()
    T._nb_solve_dense(D.copy(), rx, ry)
    assert np.allclose(np.column_stack([rx, ry]), np.linalg.solve(D, R))


def test_compiled_spline_fit_stays_within_tolerance():
    # samples of an open TrueType spline P0, C1..C3, P4 (implied on-curve midpoints)
    ctrl = np.array([[0, 0], [10, 30], [40, 35], [60, 5], [80, 20]], dtype=float)
    on = [ctrl[0], (ctrl[1] + ctrl[2]) / 2, (ctrl[2] + ctrl[3]) / 2, ctrl[4]]
    u = np.linspace(0, 1, 40, endpoint=False)[:, None]
    pts = [(1 - u) ** 2 * on[k] + 2 * u * (1 - u) * ctrl[k + 1] + u ** 2 * on[k + 1] for k in range(3)]
    P = np.concatenate(pts + [ctrl[4:]])
    ok, ext, _ = T._nb_fit_spline(P, 0.3, False, 0, T._CURV_W, T._DOWN)
    assert ok and 3 <= len(ext) <= 16
    assert np.allclose(ext[0], ctrl[0]) and np.allclose(ext[-1], ctrl[-1])  # end points stay
    contour = [(*ext[0], True)] + [(x, y, False) for x, y in ext[1:-1]] + [(*ext[-1], True)]
    poly = T.flatten_contour(contour, 64)
    dist = np.sqrt(((P[:, None, :] - poly[None]) ** 2).sum(-1)).min(axis=1)
    assert dist.max() <= 0.3 + 0.02
    # a closed loop (a circle) fits with off-curve points only
    a = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    ok, ext, _ = T._nb_fit_spline(np.column_stack([50 + 30 * np.cos(a), 50 + 30 * np.sin(a)]), 0.3, True, 0,
                                  T._CURV_W, T._DOWN)
    assert ok and 3 <= len(ext) - 2 <= 10
    assert np.allclose(np.hypot(ext[1:-1, 0] - 50, ext[1:-1, 1] - 50), 30 / np.cos(np.pi / (len(ext) - 2)), atol=0.5)


def test_marching_squares_orientation_and_float_input():
    img = np.full((32, 32), 255, np.uint8)
    img[4:28, 4:28] = 0
    img[10:20, 10:20] = 255
    cs = T.iso_contours(1.0 - img / 255.0)
    areas = sorted(T._signed_area(c) for c in cs)
    assert len(cs) == 2 and areas[0] < 0 < areas[1]  # outer and hole run opposite ways
    assert abs(abs(areas[0]) - 24 * 24) < 2 and abs(abs(areas[1]) - 10 * 10) < 2
    a = T.trace_quadratic_px(img)
    b = T.trace_quadratic_px(img.astype(np.float64))
    assert a == b and sum(len(c) for c in a) == 8  # two squares, 4 sharp corners each


def test_trace_for_display_draws_the_outline_in_the_em_box_at_display_size():
    """A real glyph at 64 px, traced as vectorize traces it and drawn at 256 px, lands on the
    glyph FreeType draws at 256 px in the same em box: same place, same pieces."""
    from fontgen.metrics import iou, piece_counts

    font = open_font(spec(KAI))
    small = Geometry.for_font(font, 64)
    display = small.resized(256)
    chars = "永国一八"  # all in the sample charset (the sample fonts are subsets)
    drawn = np.stack([T.trace_for_display(GlyphRenderer(spec(KAI), small).render(ch), small, display) for ch in chars])
    real = np.stack([GlyphRenderer(spec(KAI), display).render(ch) for ch in chars])
    assert drawn.shape == real.shape == (len(chars), 256, 256) and drawn.dtype == np.uint8
    assert (iou(drawn, real) > 0.85).all(), iou(drawn, real)
    assert (piece_counts(drawn) == piece_counts(real)).all()
    for a, b in zip(drawn, real):
        ya, xa = np.nonzero(a < 128)
        yb, xb = np.nonzero(b < 128)
        assert abs(ya.mean() - yb.mean()) < 2 and abs(xa.mean() - xb.mean()) < 2  # no shift between em boxes
    # the outline of a plain image in an em box with another origin moves with it
    shifted = Geometry(**{**display.to_dict(), "baseline_y": display.baseline_y + 32})
    moved = T.trace_for_display(GlyphRenderer(spec(KAI), small).render("一"), small, shifted)
    assert (drawn[2][224:] == 255).all() and (moved[:32] == 255).all()  # room to move
    assert iou(moved[None, 32:], drawn[2][None, :224])[0] > 0.99


def test_glyphs_below_min_iou_are_left_out_not_the_font(tmp_path):
    """One bad glyph no longer throws the font away: it is left out, listed, and the rest is written."""
    folder = tmp_path / "glyphs"
    write_folder(KAI, "永国口", folder)
    speckled = np.array(Image.open(folder / "u53E3.png"))
    rng = np.random.default_rng(0)
    speckled[rng.random(speckled.shape) < 0.02] = 0  # 口 dusted with specks the tracer drops
    Image.fromarray(speckled).save(folder / "u53E3.png")
    log = []
    result = V.vectorize_folder(folder, out=tmp_path / "font.ttf", min_iou=0.97, progress=False, log=log.append)
    assert list(result.left_out) == [ord("口")] and result.glyphs == 2
    cmap = TTFont(str(tmp_path / "font.ttf")).getBestCmap()
    assert ord("永") in cmap and ord("口") not in cmap
    listed = (tmp_path / "font-left-out.txt").read_text(encoding="utf-8")
    assert "U+53E3" in listed and "u53E3.png" in listed
    assert "left out:  1 glyphs" in result.summary() and "--min-iou" in result.summary()
    before = (tmp_path / "font.ttf").read_bytes()
    with pytest.raises(FontgenError, match=r"1 of 3 glyphs render back below --min-iou 0.97.*nothing was written"):
        V.vectorize_folder(folder, out=tmp_path / "font.ttf", min_iou=0.97, progress=False, strict=True)
    assert (tmp_path / "font.ttf").read_bytes() == before


def test_merged_font_gets_its_own_names(tmp_path):
    folder = tmp_path / "glyphs"
    write_folder(KAI, "永国", folder)
    result = V.vectorize_folder(folder, out=tmp_path / "merged.ttf", merge_into=spec(KAI), replace=True,
                                progress=False)
    original, merged = TTFont(str(SAMPLE / KAI)), TTFont(str(tmp_path / "merged.ttf"))
    family = original["name"].getDebugName(1)
    assert merged["name"].getDebugName(1) == f"{family} fontgen"
    assert merged["name"].getDebugName(6) != original["name"].getDebugName(6)
    assert merged["name"].getDebugName(3) != original["name"].getDebugName(3)
    assert "fontgen" in merged["name"].getDebugName(5) and "fontgen" in merged["name"].getDebugName(10)
    for keep in (0, 13, 14):  # copyright and licence stay
        assert merged["name"].getDebugName(keep) == original["name"].getDebugName(keep)
    assert any("licence applies" in note for note in result.notes)
    named = V.vectorize_folder(folder, out=tmp_path / "named.ttf", merge_into=spec(KAI), replace=True,
                               progress=False, family="My Kai")
    names = TTFont(str(named.font_path))["name"]
    assert names.getDebugName(1) == "My Kai" and names.getDebugName(6).startswith("MyKai-")


def test_first_use_says_it_compiles(tmp_path, monkeypatch):
    V.warm_up()
    assert V.kernels_cached()  # what the message is based on finds numba's cache files
    folder = tmp_path / "glyphs"
    write_folder(KAI, "永", folder)
    monkeypatch.setattr(V, "kernels_cached", lambda: False)
    log = []
    V.vectorize_folder(folder, out=tmp_path / "f.ttf", progress=False, log=log.append)
    assert any("compiling the tracer" in line for line in log)
    monkeypatch.setattr(V, "kernels_cached", lambda: True)
    log.clear()
    V.vectorize_folder(folder, out=tmp_path / "f.ttf", progress=False, log=log.append)
    assert not any("compiling" in line for line in log)


def test_running_text_specimen_mixes_own_and_generated_glyphs(tmp_path):
    folder = tmp_path / "glyphs"
    write_folder(KAI, "永国", folder)
    result = V.vectorize_folder(folder, out=tmp_path / "merged.ttf", merge_into=spec(KAI), replace=True,
                                progress=False)
    text = np.asarray(Image.open(result.text_specimen_path).convert("RGB")).astype(int)
    pale_red = (text == W.GENERATED_GROUND).all(axis=2)
    white = (text == 255).all(axis=2)
    dark = text.max(axis=2) < 60
    assert pale_red.sum() > 1000 and white.sum() > pale_red.sum() and dark.sum() > 1000
    assert "running text" in result.summary()
    # a standalone font: the own glyphs come from the target font named in the manifest
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["target_font"] = str(SAMPLE / KAI)
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))
    alone = V.vectorize_folder(folder, out=tmp_path / "alone.ttf", progress=False)
    assert alone.text_specimen_path is not None and alone.text_specimen_path.is_file()


def test_merge_fills_a_character_the_font_maps_to_an_empty_glyph(tmp_path):
    # some fonts map characters they lack to an empty glyph (SetoFont: 454 of GB2312 level 1);
    # coverage counts them as missing, so generate draws them and the merge must put them in
    font = TTFont(str(SAMPLE / KAI))
    assert ord("丑") not in font.getBestCmap()
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    font["glyf"].glyphs["blank"] = Glyph()
    font.setGlyphOrder(font.getGlyphOrder() + ["blank"])
    font["hmtx"]["blank"] = (font["head"].unitsPerEm, 0)
    if "vmtx" in font:
        font["vmtx"]["blank"] = (font["head"].unitsPerEm, 0)
    for sub in font["cmap"].tables:
        if sub.isUnicode():
            sub.cmap[ord("丑")] = "blank"
    holey = tmp_path / "holey.ttf"
    font.save(str(holey))
    write_folder(SOURCE, "丑口", tmp_path / "g")  # 口 has a real glyph there: kept
    out = tmp_path / "merged.ttf"
    result = V.vectorize_folder(tmp_path / "g", out=out, merge_into=str(holey), workers=1, progress=False)
    assert result.glyphs == 1 and result.skipped == [ord("口")]
    merged = TTFont(str(out))
    name = merged.getBestCmap()[ord("丑")]
    assert name != "blank" and merged["glyf"][name].numberOfContours > 0
