"""CFF stays CFF: merging into CID-keyed and name-keyed CFF fonts, standalone OTF, the cubic
fitter, and the UFO for a font editor (issue 13), on the real sample fonts (CPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont

from fontgen import cff_writer, cubic
from fontgen import vectorize as V
from fontgen import tracing as T
from fontgen.errors import FontgenError
from fontgen.fonts import FontSpec, Geometry, GlyphRenderer, open_font
from test_vectorize import KAI, SAMPLE, SOURCE, THIN, contour_count, spec, write_folder

pytestmark = pytest.mark.skipif(not (SAMPLE / "manifest.json").is_file(),
                                reason="fonts_sample/ (the real sample fonts) is missing from the checkout")

NEW = "丁九乙亮"  # not in the thin sans
HOLES = "口回日目田"


def charstring_bytes(font: TTFont) -> dict[str, bytes]:
    top = font["CFF "].cff.topDictIndex[0]
    out = {}
    for name in top.charset:
        cs = top.CharStrings[name]
        cs.compile()
        out[name] = bytes(cs.bytecode)
    return out


def signed_area_of(font: TTFont, name: str) -> list[float]:
    """Signed areas (y up) of a glyph's contours, flattened through its control points."""
    pen = RecordingPen()
    font.getGlyphSet()[name].draw(pen)
    areas, pts = [], []
    for op, args in pen.value:
        if op == "moveTo":
            pts = [args[0]]
        elif op in ("lineTo", "curveTo", "qCurveTo"):
            pts += [a for a in args if a is not None]
        elif op == "closePath":
            p = np.array(pts, float)
            areas.append(0.5 * float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))))
    return areas


def name_keyed_copy(src: Path, dst: Path) -> Path:
    """A name-keyed CFF copy of a CID-keyed sample font (one Private dict, no ROS/FDArray/FDSelect)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    font = TTFont(str(src))
    top = font["CFF "].cff.topDictIndex[0]
    assert hasattr(top, "ROS")
    glyph_set = font.getGlyphSet()
    charstrings = {}
    for name in font.getGlyphOrder():
        pen = T2CharStringPen(font["hmtx"][name][0] - 1000, None)
        glyph_set[name].draw(pen)
        charstrings[name] = pen.getCharString()
    fd_private = top.FDArray[0].Private
    private = {"defaultWidthX": 0, "nominalWidthX": 1000, "BlueValues": list(getattr(fd_private, "BlueValues", [])),
               "StdHW": 40, "StdVW": 60}
    fb = FontBuilder(font=font)
    fb.isTTF = False
    fb.setupCFF("NameKeyedTest-Regular", {"FullName": "Name Keyed Test", "FamilyName": "Name Keyed Test"},
                charstrings, private)
    font.save(str(dst))
    assert not hasattr(TTFont(str(dst))["CFF "].cff.topDictIndex[0], "ROS")
    return dst


# --------------------------------------------------------------------------------------
# Cubic fitting


def test_cubic_fit_stays_within_the_error_bound():
    # samples of a known cubic (100 px long), with a little noise: one or two cubics, every sample within tol
    c = np.array([[0, 0], [20, 60], [70, 70], [100, 10]], float)
    u = np.linspace(0, 1, 120)
    d = cubic._bezier(c, u) + np.random.default_rng(0).normal(0, 0.03, (120, 2))
    segs = cubic.fit_run(d, 0.3)
    assert len(segs) <= 2 and all(len(s) == 4 for s in segs)
    assert np.allclose(segs[0][0], d[0]) and np.allclose(segs[-1][-1], d[-1])
    poly = np.concatenate([cubic._bezier(s, np.linspace(0, 1, 2000)) for s in segs])
    assert np.sqrt(((d[:, None] - poly[None]) ** 2).sum(-1)).min(1).max() <= 0.3
    assert len(cubic.fit_run(cubic._bezier(c * 0.3, u), 0.3)) == 1  # the same curve at glyph-stroke scale
    # an S-curve with two bumps: split into smooth (G1) cubics, all within tol
    t = np.linspace(0, 4 * np.pi, 400)
    d = np.column_stack([t * 10, 15 * np.sin(t)])
    segs = cubic.fit_run(d, 0.3)
    assert 2 <= len(segs) <= 8 and all(len(s) == 4 for s in segs)
    poly = np.concatenate([cubic._bezier(s, np.linspace(0, 1, 400)) for s in segs])
    assert np.sqrt(((d[:, None] - poly[None]) ** 2).sum(-1)).min(1).max() <= 0.3 + 1e-6
    for a, b in zip(segs[:-1], segs[1:]):  # tangents continue through every split
        ta, tb = a[3] - a[2], b[1] - b[0]
        assert abs(ta[0] * tb[1] - ta[1] * tb[0]) / (np.hypot(*ta) * np.hypot(*tb)) < 1e-6
    assert cubic.fit_stats()["worst"] <= 0.3


def test_cubic_trace_shapes():
    img = np.full((64, 64), 255, np.uint8)
    img[10:50, 10:50] = 0
    img[20:40, 20:40] = 255
    contours = cubic.trace_glyph_cubic(img, V.geometry_from_options(64, 1000))
    assert len(contours) == 2 and all(len(c) == 4 and all(on for *_, on in c) for c in contours)  # sharp squares
    # outer counter-clockwise, hole clockwise (y up): the PostScript direction
    areas = sorted((T._signed_area(np.array([(x, y) for x, y, _ in c])) for c in contours), key=abs)
    assert areas[0] < 0 < areas[1]
    # a disc: on-curve points at its top and bottom with horizontal handles, off-curves in pairs
    size, ss = 128, 4
    yy, xx = (np.mgrid[0:size * ss, 0:size * ss] + 0.5) / ss
    cov = ((xx - 64) ** 2 + (yy - 60) ** 2 <= 40 ** 2).reshape(size, ss, size, ss).mean(axis=(1, 3))
    disc = np.round(255 * (1 - cov)).astype(np.uint8)
    (c,) = cubic.trace_glyph_cubic(disc, V.geometry_from_options(size, 1000))
    flags = [on for *_, on in c]
    assert 6 <= len(c) <= 18 and flags[0]
    runs = "".join("1" if f else "0" for f in flags + flags[:1]).split("1")
    assert all(len(r) in (0, 2) for r in runs)  # off-curve points come in pairs
    ys = [y for _, y, on in c if on]
    assert any(abs(y - max(yy for _, yy, _ in c)) < 1e-6 for y in ys)  # the top is an on-curve point
    back = T.rasterize_polygons([np.column_stack(V.geometry_from_options(size, 1000).to_pixels(
        *cubic.flatten_cubic_contour(c).T))], size, 4)
    assert T.ink_iou(disc < 128, back >= 0.5) >= 0.99


# --------------------------------------------------------------------------------------
# Merging into CFF


@pytest.fixture(scope="module")
def cid_merge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cid")
    write_folder(SOURCE, NEW + "口", tmp / "g")
    before = (SAMPLE / THIN).read_bytes()
    result = V.vectorize_folder(tmp / "g", out=tmp / "thin-merged.otf", merge_into=str(SAMPLE / THIN),
                                replace=True, workers=1, progress=False, ufo=tmp / "new.ufo")
    assert (SAMPLE / THIN).read_bytes() == before  # the input is never touched
    return result, tmp


def test_merge_into_cid_keyed_cff_stays_cff(cid_merge):
    result, tmp = cid_merge
    assert result.glyphs == 5 and result.iou_worst >= 0.94, result.summary()
    assert any("byte for byte unchanged" in n for n in result.notes)
    target, merged = TTFont(str(SAMPLE / THIN)), TTFont(str(result.font_path))
    assert merged.sfntVersion == "OTTO" and "CFF " in merged and "glyf" not in merged
    ttop, mtop = target["CFF "].cff.topDictIndex[0], merged["CFF "].cff.topDictIndex[0]
    assert hasattr(mtop, "ROS") and len(mtop.FDArray) == len(ttop.FDArray)
    # every original charstring byte for byte, subroutines and private dicts too
    old, new = charstring_bytes(target), charstring_bytes(merged)
    assert all(new[name] == data for name, data in old.items())
    assert [bytes(s.bytecode) for s in cff_writer._compiled(target["CFF "].cff.GlobalSubrs)] == \
        [bytes(s.bytecode) for s in cff_writer._compiled(merged["CFF "].cff.GlobalSubrs)]
    for fa, fb in zip(ttop.FDArray, mtop.FDArray):
        assert fa.Private.rawDict == fb.Private.rawDict
    n_old = len(ttop.charset)
    assert mtop.charset[:n_old] == ttop.charset and len(mtop.charset) == n_old + 5
    assert list(mtop.FDSelect.gidArray[:n_old]) == list(ttop.FDSelect.gidArray)
    # the new glyphs: next CIDs, the ideographs' FD, widths, vertical metrics, cmap
    tcmap, mcmap = target.getBestCmap(), merged.getBestCmap()
    ref = tcmap[ord("国")]
    ideo_fd = ttop.FDSelect[target.getGlyphID(ref)]
    max_cid = max(int(n[3:]) for n in ttop.charset if n.startswith("cid"))
    new_names = [mcmap[ord(ch)] for ch in NEW + "口"]
    assert sorted(int(n[3:]) for n in new_names) == list(range(max_cid + 1, max_cid + 6))
    assert mcmap[ord("口")] != tcmap[ord("口")] and mcmap[ord("国")] == ref  # --replace
    assert mtop.CIDCount >= max_cid + 6
    for name in new_names:
        gid = merged.getGlyphID(name)
        assert mtop.FDSelect[gid] == ideo_fd
        assert merged["hmtx"][name][0] == target["hmtx"][ref][0]
        assert merged["vmtx"][name][0] == target["vmtx"][ref][0]
        cs = mtop.CharStrings[name]
        cs.draw(RecordingPen())
        assert cs.width == target["hmtx"][ref][0]  # width against the FD's nominalWidthX / defaultWidthX
        assert merged["hmtx"][name][1] == round(cs.calcBounds(mtop.CharStrings)[0])
    assert merged["maxp"].numGlyphs == len(merged.getGlyphOrder()) == n_old + 5
    for ch in HOLES[:1]:  # 口: outer counter-clockwise and its hole clockwise, as CFF draws
        areas = sorted(signed_area_of(merged, mcmap[ord(ch)]), key=abs)
        assert areas[-1] > 0 > areas[0]
    assert merged["head"].xMin <= target["head"].xMin and merged["head"].yMax >= target["head"].yMax


def test_written_charstring_change_is_caught(cid_merge, tmp_path):
    result, _ = cid_merge
    font = TTFont(str(result.font_path))
    top = font["CFF "].cff.topDictIndex[0]
    name = top.charset[5]
    cs = top.CharStrings[name]
    cs.decompile()
    cs.program = [p + 1 if isinstance(p, int) and i == 1 else p for i, p in enumerate(cs.program)]
    font.save(str(tmp_path / "tampered.otf"))
    with pytest.raises(FontgenError, match="charstrings changed"):
        cff_writer.check_charstrings_unchanged(FontSpec(SAMPLE / THIN), tmp_path / "tampered.otf")
    assert cff_writer.check_charstrings_unchanged(FontSpec(SAMPLE / THIN), result.font_path) == len(
        TTFont(str(SAMPLE / THIN)).getGlyphOrder())


def test_merge_into_name_keyed_cff(tmp_path):
    target = name_keyed_copy(SAMPLE / THIN, tmp_path / "named.otf")
    write_folder(SOURCE, NEW, tmp_path / "g")
    result = V.vectorize_folder(tmp_path / "g", merge_into=str(target), replace=True, workers=1, progress=False,
                                fonts_dir=tmp_path / "fonts")
    assert result.font_path.suffix == ".otf"  # the default name follows the outline format
    assert result.glyphs == 4 and result.iou_worst >= 0.94, result.summary()
    t, m = TTFont(str(target)), TTFont(str(result.font_path))
    mtop = m["CFF "].cff.topDictIndex[0]
    assert not hasattr(mtop, "FDArray")
    old, new = charstring_bytes(t), charstring_bytes(m)
    assert all(new[n] == b for n, b in old.items())
    cmap = m.getBestCmap()
    for ch in NEW:
        name = cmap[ord(ch)]
        assert name == f"uni{ord(ch):04X}"
        cs = mtop.CharStrings[name]
        cs.draw(RecordingPen())
        assert cs.width == m["hmtx"][name][0] == t["hmtx"][t.getBestCmap()[ord("国")]][0]


def test_to_truetype_is_explicit_and_cff2_refused(tmp_path):
    write_folder(SOURCE, "丁", tmp_path / "g")
    result = V.vectorize_folder(tmp_path / "g", out=tmp_path / "x.ttf", merge_into=str(SAMPLE / THIN),
                                to_truetype=True, workers=1, progress=False)
    assert "glyf" in TTFont(str(result.font_path)) and any("converted to TrueType" in n for n in result.notes)
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    fb = FontBuilder(1000, isTTF=False)  # a tiny CFF2 (variable PostScript) font
    fb.setupGlyphOrder([".notdef", "uni4E00"])
    fb.setupCharacterMap({0x4E00: "uni4E00"})
    charstrings = {}
    for name in (".notdef", "uni4E00"):
        pen = T2CharStringPen(None, None, CFF2=True)
        for x, y in ((100, 300), (900, 300), (900, 400), (100, 400)):
            (pen.lineTo if pen._commands else pen.moveTo)((x, y))
        pen.closePath()
        charstrings[name] = pen.getCharString()
    fb.setupCFF2(charstrings)
    fb.setupHorizontalMetrics({".notdef": (1000, 100), "uni4E00": (1000, 100)})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": "CFF2 Test", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120)
    fb.setupPost()
    fb.save(str(tmp_path / "cff2.otf"))
    with pytest.raises(FontgenError, match="CFF2"):
        V.vectorize_folder(tmp_path / "g", out=tmp_path / "y.otf", merge_into=str(tmp_path / "cff2.otf"),
                           workers=1, progress=False)


# --------------------------------------------------------------------------------------
# Standalone OTF and UFO


@pytest.fixture(scope="module")
def standalone_otf(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("otf")
    chars = "口回国永田一家飞日目四图八雨乡主鸟"
    write_folder(KAI, chars, tmp / "g")
    otf = V.vectorize_folder(tmp / "g", out=tmp / "kai.otf", workers=1, progress=False, ufo=tmp / "kai.ufo")
    ttf = V.vectorize_folder(tmp / "g", out=tmp / "kai.ttf", workers=1, progress=False, ufo=tmp / "kai-q.ufo")
    return otf, ttf, tmp, chars


def test_standalone_otf(standalone_otf):
    otf, ttf, tmp, chars = standalone_otf
    font = TTFont(str(otf.font_path))
    assert font.sfntVersion == "OTTO" and "CFF " in font and "glyf" not in font
    assert otf.glyphs == len(chars) and otf.iou_mean >= 0.97 and otf.iou_worst >= 0.94, otf.summary()
    assert otf.iou_mean >= ttf.iou_mean - 0.005
    assert not any("consider naming" in n for n in otf.notes)
    source = open_font(spec(KAI))
    for ch in HOLES:
        assert contour_count(font, ch) == contour_count(source, ch), ch
    assert all(font["hmtx"][g][0] == 1000 and font["vmtx"][g][0] == 1000 for g in font.getGlyphOrder())
    # cubic segments cost 3 points; still within 1.5x the quadratic splines' points
    assert (otf.on_points + otf.off_points) <= 1.5 * (ttf.on_points + ttf.off_points), (otf.summary(), ttf.summary())


@pytest.mark.parametrize("which", ["otf", "ttf"])
def test_ufo_reads_back(standalone_otf, which):
    import ufoLib2

    otf, ttf, tmp, chars = standalone_otf
    result = otf if which == "otf" else ttf
    path = tmp / ("kai.ufo" if which == "otf" else "kai-q.ufo")
    assert any(str(path) in n for n in result.notes)
    ufo = ufoLib2.Font.open(path)
    assert len(ufo) == len(chars)
    font = TTFont(str(result.font_path))
    geometry = Geometry.for_font(open_font(spec(KAI)), 256)
    renderer = GlyphRenderer(spec(KAI), geometry)
    types = set()
    for ch in chars:
        glyph = ufo[f"uni{ord(ch):04X}"]
        assert glyph.unicodes == [ord(ch)] and glyph.width == 1000
        assert len(glyph.contours) == contour_count(font, ch), ch
        traced = (cubic.trace_glyph_cubic if which == "otf" else V.trace_glyph)(renderer.render(ch), geometry)
        assert len(glyph.contours) == len(traced)
        types |= {p.type for c in glyph.contours for p in c.points}
    assert ("qcurve" in types) == (which == "ttf") and ("curve" in types) == (which == "otf")
    assert ufo.info.unitsPerEm == 1000 and ufo.info.ascender - ufo.info.descender == 1000
    assert {g.name for g in ufo.guidelines} >= {"em top", "em bottom", "baseline"}
    assert sorted(ufo.lib["public.glyphOrder"]) == sorted(f"uni{ord(ch):04X}" for ch in chars)


def test_ufo_of_a_merge_uses_the_target_em_box(cid_merge):
    import ufoLib2

    result, tmp = cid_merge
    ufo = ufoLib2.Font.open(tmp / "new.ufo")
    assert len(ufo) == 5 and ufo.lib["com.fontgen.curves"] == "cubic"
    target = TTFont(str(SAMPLE / THIN))
    assert ufo.info.unitsPerEm == target["head"].unitsPerEm
    assert ufo["uni4E01"].width == target["hmtx"][target.getBestCmap()[ord("国")]][0]
    with pytest.raises(FontgenError, match=".ufo"):
        V.vectorize_folder(tmp / "g", out=tmp / "z.otf", workers=1, progress=False, ufo=tmp / "z.txt")


def test_cli_otf_ufo_and_to_truetype(tmp_path):
    from fontgen.cli import cli

    write_folder(SOURCE, "口回", tmp_path / "g")
    runner = CliRunner()
    res = runner.invoke(cli, ["vectorize", str(tmp_path / "g"), "--to-truetype"])
    assert res.exit_code == 2 and "--merge-into" in res.output
    res = runner.invoke(cli, ["vectorize", str(tmp_path / "g"), "--out", str(tmp_path / "a.otf"),
                              "--ufo", str(tmp_path / "a.ufo"), "--workers", "1"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "CFF " in TTFont(str(tmp_path / "a.otf")) and (tmp_path / "a.ufo" / "metainfo.plist").is_file()
