"""`fontgen render` on the real sample fonts: coverage, geometry, dataset folder, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.boundsPen import BoundsPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont

from fontgen import render as render_step
from fontgen.cli import cli
from fontgen.dataset import load_dataset
from fontgen.fonts import FontSpec, Geometry, GlyphRenderer, coverage, open_font

GEOMETRY_CHARS = "一口回国永家飞鸟的"


def fonttools_present(spec: FontSpec, chars) -> set[str]:
    """Coverage computed independently of fontgen: cmap -> non-.notdef glyph with ink."""
    font = TTFont(str(spec.path), fontNumber=spec.face if spec.path.suffix.lower() == ".ttc" else -1)
    cmap, glyphs = font.getBestCmap(), font.getGlyphSet()
    present = set()
    for ch in chars:
        name = cmap.get(ord(ch))
        if name is None or name == ".notdef":
            continue
        pen = BoundsPen(glyphs)
        glyphs[name].draw(pen)
        if pen.bounds is not None:
            present.add(ch)
    return present


def test_sample_fonts_cover_what_the_brief_asks(sample_manifest, sample_styles, sample_chars):
    assert 600 <= len(sample_chars) <= 1000
    assert len(sample_styles) >= 14 and 12 in sample_styles
    suffixes = {spec.path.suffix.lower() for spec in sample_styles.values()}
    assert ".ttc" in suffixes and ".otf" in suffixes
    otf = next(s for s in sample_styles.values() if s.path.suffix.lower() == ".otf")
    assert "CFF " in TTFont(str(otf.path)) or "CFF2" in TTFont(str(otf.path))


def test_counts_match_fonttools_coverage(small_dataset, sample_source, sample_styles):
    data = load_dataset(small_dataset)
    chars = [chr(int(cp)) for cp in data.codepoints]
    assert set(chars) <= fonttools_present(sample_source, chars)
    requested = data.manifest["charset"]["requested"]
    assert len(chars) == requested  # the source covers the whole sample charset
    for style in data.styles:
        expected = fonttools_present(sample_styles[style.id], chars)
        assert set(data.chars_of_style(style.id)) == expected, style.name
        entry = data.manifest["coverage"][f"style {style.id} {style.name}"]
        assert entry["present"] == len(expected)
        assert entry["present"] + sum(entry["skipped"].values()) == len(chars)
    # every style misses something, so there is something to generate
    assert all(len(data.chars_of_style(s.id)) < len(chars) for s in data.styles)


@pytest.fixture(scope="module")
def geometry_dataset(tmp_path_factory, sample_source, sample_styles) -> Path:
    out = tmp_path_factory.mktemp("geom") / "data"
    targets = [render_step.StyleFont(i, f"s{i}", spec) for i, spec in sample_styles.items()]
    job = render_step.RenderJob(source=sample_source, targets=targets, chars=list(GEOMETRY_CHARS),
                                charset_name="test", out=out, image_size=256, workers=2)
    render_step.render_dataset(job, progress=False, log=lambda line: None)
    return out


def _check_bbox(pixels: np.ndarray, spec: FontSpec, geometry: Geometry, ch: str) -> None:
    font = open_font(spec, lazy=False)
    glyphs = font.getGlyphSet()
    pen = BoundsPen(glyphs)
    glyphs[font.getBestCmap()[ord(ch)]].draw(pen)
    x0, y0, x1, y1 = pen.bounds
    left, bottom = geometry.to_pixels(x0, y0)
    right, top = geometry.to_pixels(x1, y1)
    ys, xs = np.nonzero(pixels < 250)  # ink = at least 2% coverage; fainter is anti-aliasing dust
    ink = (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1)
    # pixels the outline touches, against pixels that hold ink
    for got, want in zip(ink, (math.floor(left), math.ceil(right), math.floor(top), math.ceil(bottom))):
        if 0 < want < geometry.image_size:  # the em box may clip a glyph; clipped sides say nothing
            assert abs(got - want) <= 1.0, (str(spec), ch, ink, (left, right, top, bottom))


def test_ink_bbox_is_outline_bbox_through_recorded_transform(geometry_dataset, sample_source, sample_styles):
    data = load_dataset(geometry_dataset)
    for row, cp in enumerate(data.codepoints):
        _check_bbox(np.asarray(data.source[row]), sample_source, data.source_font.geometry, chr(int(cp)))
    pair_char, pair_style = np.asarray(data.pair_char), np.asarray(data.pair_style)
    checked_suffixes = set()
    for i in range(len(pair_char)):
        style = data.style(int(pair_style[i]))
        spec = sample_styles[style.id]
        _check_bbox(np.asarray(data.images[i]), spec, style.font.geometry, chr(int(data.codepoints[pair_char[i]])))
        checked_suffixes.add(spec.path.suffix.lower())
    assert {".ttc", ".otf"} <= checked_suffixes  # collection faces and CFF outlines both went through


def test_geometry_is_em_box_not_glyph_box(geometry_dataset):
    """一 stays a thin bar in the middle; it is not stretched to fill the canvas."""
    data = load_dataset(geometry_dataset)
    row = list(map(int, data.codepoints)).index(ord("一"))
    ys, xs = np.nonzero(np.asarray(data.source[row]) < 128)
    assert ys.max() - ys.min() < 0.2 * 256 and xs.max() - xs.min() > 0.6 * 256
    geometry = data.source_font.geometry
    assert geometry.scale == pytest.approx(256 / geometry.units_per_em)
    x_px, y_px = geometry.to_pixels(300.0, 200.0)
    assert np.allclose(geometry.to_font_units(x_px, y_px), (300.0, 200.0))


def test_memmapped_dataset_has_the_rendered_pixels(small_dataset, sample_source, sample_styles):
    data = load_dataset(small_dataset)
    assert isinstance(data.images, np.memmap) and isinstance(data.source, np.memmap)
    assert data.images.dtype == np.uint8 and data.images.shape[1:] == (64, 64)
    source_renderer = GlyphRenderer(sample_source, data.source_font.geometry)
    for row in (0, len(data.codepoints) // 2, len(data.codepoints) - 1):
        assert np.array_equal(data.source[row], source_renderer.render(chr(int(data.codepoints[row]))))
    for i in (0, len(data.pair_char) - 1):
        style = data.style(int(data.pair_style[i]))
        renderer = GlyphRenderer(sample_styles[style.id], style.font.geometry)
        assert np.array_equal(data.images[i], renderer.render(chr(int(data.codepoints[data.pair_char[i]]))))
    # the source glyph is stored once per character, not once per pair
    assert len(data.source) == len(data.codepoints) < len(data.pair_char)


def test_split_is_deterministic_and_by_character(small_dataset, tmp_path, sample_chars):
    data = load_dataset(small_dataset)
    val = data.pair_indices("val")
    assert 0 < len(val) < len(data.pair_char)
    assert len(data.pair_indices("train")) + len(val) == len(data.pair_char)
    again = tmp_path / "again"
    job = render_step.default_job(again, image_size=64, val_fraction=0.2, workers=1)
    job.chars = sample_chars[::max(1, len(sample_chars) // 60)][:60]
    render_step.render_dataset(job, progress=False, log=lambda line: None)
    assert np.array_equal(load_dataset(again).pair_split, data.pair_split)
    assert (again / "preview.png").stat().st_size > 1000


def build_font(path: Path, shapes: dict[str, list], cmap: dict[int, str]) -> None:
    """A tiny TrueType font: shapes maps glyph names to lists of rectangles (x0, y0, x1, y1)."""
    fb = FontBuilder(1000, isTTF=True)
    order = [".notdef", *shapes]
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap(cmap)
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(None)
        for x0, y0, x1, y1 in shapes.get(name, [(100, 0, 900, 800)] if name == ".notdef" else []):
            pen.moveTo((x0, y0)), pen.lineTo((x0, y1)), pen.lineTo((x1, y1)), pen.lineTo((x1, y0)), pen.closePath()
        glyphs[name] = pen.glyph()
    fb.setupGlyf(glyphs)
    fb.setupHorizontalMetrics({name: (1000, 0) for name in order})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": "Placeholder Test", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    fb.save(str(path))


def test_placeholders_empty_and_notdef_glyphs_are_missing(tmp_path):
    shapes = {"tofu": [(50, -100, 950, 850)], "empty": []}
    shapes.update({f"real{i}": [(100 + 60 * i, 100, 300 + 60 * i, 700)] for i in range(3)})
    shapes.update({f"same{i}": [(200, 200, 800, 600)] for i in range(6)})  # different glyphs, one drawing
    cmap = {0x4E00 + i: "tofu" for i in range(10)}
    cmap.update({0x4E10 + i: f"real{i}" for i in range(3)})
    cmap.update({0x4E20 + i: f"same{i}" for i in range(6)})
    cmap[0x4E30] = "empty"
    cmap[0x4E31] = ".notdef"
    path = tmp_path / "placeholder.ttf"
    build_font(path, shapes, cmap)
    spec = FontSpec(path)
    font = open_font(spec)
    chars = [chr(cp) for cp in sorted(cmap)] + ["\u4e40"]
    cov = coverage(font, chars, GlyphRenderer(spec, Geometry.for_font(font, 48)))
    assert cov.present == [chr(0x4E10 + i) for i in range(3)]
    assert cov.missing[chr(0x4E00)] == "shared placeholder glyph"
    assert cov.missing[chr(0x4E20)] == "placeholder rendering"
    assert cov.missing[chr(0x4E30)] == "empty outline"
    # fontTools drops cmap entries that point at glyph 0 when it compiles, so either reason is right
    assert cov.missing[chr(0x4E31)] in (".notdef", "not in cmap")
    assert cov.missing["\u4e40"] == "not in cmap"


# --- bad input: one clear message, exit 1 (2 for usage), nothing written ---------------------------


def run_render(tmp_path: Path, *args: str):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path / "work"), "render", "--out", str(out), *args])
    return result, out


@pytest.fixture()
def not_a_font(tmp_path) -> Path:
    path = tmp_path / "notes.ttf"
    path.write_text("this is not a font\n" * 20)
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "font not found"),
    ("not-a-font", "not a usable TrueType/OpenType font"),
    ("face-out-of-range", "face 9 does not exist"),
    ("no-common-chars", "nothing in common"),
    ("unknown-charset", "unknown charset"),
    ("target-is-source", "is the source font itself"),
])
def test_bad_input_gives_one_clear_error_and_writes_nothing(tmp_path, not_a_font, sample_source, sample_styles,
                                                            case, message):
    ttc = next(s for s in sample_styles.values() if s.path.suffix.lower() == ".ttc")
    target = str(sample_styles[0])
    args = {
        "missing": ["--source", str(tmp_path / "nope.ttf"), "--target", target, "--chars", "永"],
        "not-a-font": ["--source", str(sample_source), "--target", str(not_a_font), "--chars", "永"],
        "face-out-of-range": ["--source", str(sample_source), "--target", f"{ttc.path}#9", "--chars", "永"],
        "no-common-chars": ["--source", str(sample_source), "--target", target, "--chars", "\U00020000\U0002A700"],
        "unknown-charset": ["--source", str(sample_source), "--target", target, "--charset", "gb9999"],
        "target-is-source": ["--source", str(sample_source), "--target", str(sample_source), "--chars", "永"],
    }[case]
    result, out = run_render(tmp_path, *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert result.output.count("Error") == 1 and "Traceback" not in result.output
    assert not out.exists() and not list(out.parent.glob(".out.tmp-*"))


def test_usage_errors_exit_2(tmp_path, sample_source):
    result, out = run_render(tmp_path, "--source", str(sample_source))
    assert result.exit_code == 2 and "--target" in result.output
    result, out = run_render(tmp_path, "--size", "many")
    assert result.exit_code == 2
    result, out = run_render(tmp_path, "--size", "9999")
    assert result.exit_code == 2 and "64<=x<=512" in result.output
    assert not out.exists()


def test_interrupted_render_leaves_no_dataset(tmp_path, monkeypatch, sample_chars):
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    real = render_step._render_rows
    monkeypatch.setattr(render_step, "_render_rows", failing)
    out = tmp_path / "data"
    job = render_step.default_job(out, image_size=64, workers=1)
    job.chars = sample_chars[:300]
    with pytest.raises(KeyboardInterrupt):
        render_step.render_dataset(job, progress=False, log=lambda line: None)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_default_render_through_the_cli(tmp_path, sample_chars):
    """No --source/--target: fonts_sample/ is used; the summary names what was written."""
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "render", "--size", "64", "--chars",
                                      "".join(sample_chars[:20]), "--workers", "1"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["image_size"] == 64 and manifest["charset"]["chars"] == 20
    assert len(manifest["styles"]) >= 14
    assert "wrote" in result.output and math.isclose(manifest["split"]["val_fraction"], 0.1)


def test_render_says_how_much_of_what_a_target_lacks_the_source_can_draw(tmp_path, sample_source, sample_styles,
                                                                           sample_chars):
    from fontgen.fonts import coverage_of

    handwriting = sample_styles[12]
    lacking = [ch for ch in sample_chars[:200] if ch in coverage_of(handwriting, sample_chars[:200]).missing][:5]
    rare = "龘靐齉"  # in neither sample font
    assert len(lacking) == 5 and not set(rare) & set(coverage_of(sample_source, rare).present)
    chars = "".join(sample_chars[:20]) + "".join(lacking) + rare
    result = CliRunner().invoke(cli, ["render", "--source", str(sample_source.path), "--target",
                                      str(handwriting.path), "--chars", chars, "--size", "64", "--out",
                                      str(tmp_path / "data"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    missing = len(set(lacking) | set(rare) | {ch for ch in sample_chars[:20] if ch in
                                               coverage_of(handwriting, sample_chars[:20]).missing})
    assert f"of the {missing} characters it lacks the source can draw {missing - 3}" in result.output
    assert "3 characters that the source font lacks" in result.output
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text(encoding="utf-8"))
    entry = next(v for k, v in manifest["coverage"].items() if k.startswith("style 0"))
    assert (entry["missing"], entry["missing_source_can_draw"]) == (missing, missing - 3)


def _regional_collection(path, fonts, family):
    """A collection like Noto CJK's: face 0 named "<family> JP", face 1 "<family> SC"."""
    from fontTools.ttLib import TTCollection

    faces = []
    for spec, suffix in zip(fonts, ("JP", "SC")):
        font = TTFont(str(spec.path))
        for record in font["name"].names:
            if record.nameID in (1, 4, 16):
                record.string = f"{family} {suffix}"
        faces.append(font)
    collection = TTCollection()
    collection.fonts = faces
    collection.save(str(path))


def test_a_collection_without_face_uses_the_face_of_the_charset_region(tmp_path, sample_source, sample_styles):
    from fontgen.charsets import load_charset
    from fontgen.fonts import charset_region

    assert charset_region(load_charset("gb2312-1")) == "zh-Hans"
    assert charset_region(load_charset("big5")[:500]) == "zh-Hant"
    _regional_collection(tmp_path / "cjk.ttc", [sample_styles[7], sample_styles[7]], "Test Kai")
    args = ["render", "--source", str(sample_source.path), "--chars", "永国", "--size", "64", "--workers", "1"]
    result = CliRunner().invoke(cli, args + ["--target", str(tmp_path / "cjk.ttc"), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "collection of 2 faces; using #1 Test Kai SC (zh-Hans)" in result.output and "#0 Test Kai JP (ja)" in result.output
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["styles"][0]["face"] == 1
    result = CliRunner().invoke(cli, args + ["--target", f"{tmp_path / 'cjk.ttc'}#0", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0 and "collection of" not in result.output
    assert json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["styles"][0]["face"] == 0


def test_font_file_quirks_that_fonttools_works_around_are_not_repeated_at_every_open(tmp_path, sample_styles,
                                                                                    sample_source):
    """SetoFont's 'created' date is stored as a Unix time: fontTools warns on every open (to stderr,
    through logging), and a complete run opens the font hundreds of times. The quirk is harmless;
    --debug still shows it."""
    import subprocess
    import sys

    font = TTFont(str(sample_styles[12].path))
    font["head"].created = 1_000_000_000  # 2001 as Unix time: "seems very low" to fontTools
    font.save(str(tmp_path / "quirky.ttf"))
    args = ["render", "--source", str(sample_source.path), "--target", str(tmp_path / "quirky.ttf"), "--chars", "永国",
            "--size", "64", "--workers", "1"]

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "fontgen", *extra], capture_output=True, text=True, timeout=120)

    quiet = run(*args, "--out", str(tmp_path / "a"))
    assert quiet.returncode == 0, quiet.stderr
    assert "timestamp" not in quiet.stdout + quiet.stderr
    loud = run("--debug", *args, "--out", str(tmp_path / "b"))
    assert loud.returncode == 0 and "'created' timestamp seems very low" in loud.stderr


def test_a_source_collection_without_face_uses_the_face_nearest_the_one_target(tmp_path, sample_styles, sample_chars):
    """Regional faces draw characters in different forms; a Japanese Mincho completed with GB2312
    characters wants the face nearest its own glyphs, not the charset's. Here face 0 ("JP") is the
    sample Song, face 1 ("SC") the sample Kai: for the Mincho the Song is nearer, whatever the charset."""
    _regional_collection(tmp_path / "cjk.ttc", [sample_styles[9], sample_styles[7]], "Test CJK")
    both = set(TTFont(str(sample_styles[9].path)).getBestCmap()) & set(TTFont(str(sample_styles[7].path)).getBestCmap())
    chars = "".join(ch for ch in sample_chars if ord(ch) in both)[:40]
    args = ["render", "--source", str(tmp_path / "cjk.ttc"), "--chars", chars, "--size", "64", "--workers", "1"]
    result = CliRunner().invoke(cli, args + ["--target", str(sample_styles[14].path), "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    assert "using #0 Test CJK JP (ja), nearest the target's own glyphs" in result.output
    assert json.loads((tmp_path / "one" / "manifest.json").read_text(encoding="utf-8"))["source"]["face"] == 0
    # several styles have no one font to be near: the charset's region decides, as for a target
    result = CliRunner().invoke(cli, args + ["--target", str(sample_styles[14].path), "--target", str(sample_styles[3].path),
                                             "--out", str(tmp_path / "two")])
    assert result.exit_code == 0, result.output
    assert "using #1 Test CJK SC (zh-Hans) for the zh-Hans characters" in result.output
    assert json.loads((tmp_path / "two" / "manifest.json").read_text(encoding="utf-8"))["source"]["face"] == 1
    # faces that draw every character alike give nothing to judge by: the charset's region again
    _regional_collection(tmp_path / "same.ttc", [sample_styles[9], sample_styles[9]], "Test CJK")
    args[2] = str(tmp_path / "same.ttc")
    result = CliRunner().invoke(cli, args + ["--target", str(sample_styles[14].path), "--out", str(tmp_path / "same")])
    assert result.exit_code == 0, result.output
    assert "using #1 Test CJK SC (zh-Hans) for the zh-Hans characters" in result.output


def test_preview_is_worth_looking_at_with_one_style(tmp_path, sample_source, sample_styles, sample_chars):
    from PIL import Image

    result = CliRunner().invoke(cli, ["render", "--source", str(sample_source.path), "--target",
                                      str(sample_styles[7].path), "--chars", "".join(sample_chars[:30]), "--size",
                                      "64", "--out", str(tmp_path / "data"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    width, height = Image.open(tmp_path / "data" / "preview.png").size
    assert height >= 12 * 96 and width >= 2 * 96  # 12 characters, source | style, at 96 px


def test_the_source_nearest_the_targets_style_is_chosen_unless_it_draws_clearly_less(sample_source, sample_styles,
                                                                                       sample_chars):
    sans_bold, sans_black, serif_bold, serif_black = (sample_styles[i] for i in (1, 2, 4, 5))
    ranked = render_step.rank_sources(serif_black, [sans_bold, serif_bold], sample_chars)
    assert [c.font for c in ranked] == [serif_bold, sans_bold]
    assert ranked[0].distance < 0.5 * ranked[1].distance
    # the serif draws one character fewer of the 193 the black serif lacks: within the 1% a nearer style may cost
    assert ranked[0].draws < ranked[1].draws <= ranked[0].draws / render_step.COVERAGE_KEPT
    assert [c.font for c in render_step.rank_sources(sans_black, [serif_bold, sans_bold], sample_chars)] == \
        [sans_bold, serif_bold]
    # a candidate that can draw far fewer of the lacked characters loses, however near its style
    ranked = render_step.rank_sources(serif_black, [serif_bold, sample_source], sample_chars)
    assert [c.font for c in ranked] == [sample_source, serif_bold] and ranked[0].distance > ranked[1].distance
    lines = []
    assert render_step.choose_sources(serif_black, [sample_source, serif_bold], sample_chars, lines.append) \
        == [sample_source]
    assert lines[0].startswith(f"source * {sample_source}: draws {ranked[0].draws} ")
    assert render_step.choose_sources(serif_black, [serif_bold], sample_chars, lines.append) == [serif_bold]
