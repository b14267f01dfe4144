"""`fontgen generate` and `fontgen evaluate` with a tiny model trained on real sample glyphs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fontTools.pens.boundsPen import BoundsPen
from fontTools.ttLib import TTFont
from PIL import Image

from fontgen.cli import cli
from fontgen.dataset import load_dataset
from fontgen.fonts import Geometry, open_font
from fontgen.generate import GenerateJob, Generation, generate_glyphs, parse_style, structure_flags
from fontgen.images import calibrate_ink

STYLE = 12


def fonttools_missing(spec, chars) -> list[str]:
    font = TTFont(str(spec.path), fontNumber=spec.face if spec.path.suffix.lower() == ".ttc" else -1)
    cmap, glyphs = font.getBestCmap(), font.getGlyphSet()
    missing = []
    for ch in chars:
        name = cmap.get(ord(ch))
        pen = BoundsPen(glyphs)
        if name is not None and name != ".notdef":
            glyphs[name].draw(pen)
        if pen.bounds is None:
            missing.append(ch)
    return missing


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_run) -> Path:
    return tiny_run.parent.parent.parent  # WORKDIR/runs/NAME/checkpoint.pt


def invoke(workdir: Path, *args: str):
    return CliRunner().invoke(cli, ["--workdir", str(workdir), *args])


def test_generate_writes_exactly_the_missing_glyphs(workdir, sample_styles, small_dataset):
    result = invoke(workdir, "generate", "--style", str(STYLE))
    assert result.exit_code == 0, result.output
    out = workdir / "generated" / f"style-{STYLE}"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    requested = json.loads((small_dataset / "manifest.json").read_text(encoding="utf-8"))["charset"]["requested_chars"]
    expected = fonttools_missing(sample_styles[STYLE], requested)
    assert expected and [g["char"] for g in manifest["glyphs"]] == expected
    assert sorted(p.name for p in out.glob("u*.png")) == sorted(f"u{ord(ch):04X}.png" for ch in expected)
    assert manifest["format"] == "fontgen-glyphs" and manifest["style"]["id"] == STYLE
    geometry = Geometry.from_dict(manifest["geometry"])
    with Image.open(out / f"u{ord(expected[0]):04X}.png") as image:
        assert image.mode == "L" and image.size == (geometry.image_size, geometry.image_size)
    assert manifest["target_font"].startswith(str(sample_styles[STYLE].path))
    assert (out / "contact-sheet.png").stat().st_size > 1000


def test_generation_is_deterministic_and_blend_weight_one_is_plain(tiny_run, small_dataset):
    generation = Generation(tiny_run, "cpu")
    data = load_dataset(small_dataset)
    sources = np.asarray(data.source[:6])
    plain = generation.run(sources, {STYLE: 1.0})
    assert np.array_equal(plain, generation.run(sources, {STYLE: 1.0}))
    blend = parse_style(f"3:0,{STYLE}:1.0", generation.meta["styles"])
    assert np.array_equal(generation.run(sources, blend), plain)
    halfway = generation.run(sources, parse_style(f"3:0.5,{STYLE}:0.5", generation.meta["styles"]))
    assert not np.array_equal(halfway, plain)


def test_interpolation_strips_and_explicit_chars(tiny_run, tmp_path):
    job = GenerateJob(checkpoint=tiny_run, style="3", out=tmp_path / "g", chars=list("永国"),
                      interpolate=("3", str(STYLE)), steps=4, device="cpu")
    report = generate_glyphs(job, progress=False, log=lambda line: None)
    assert report.glyphs == 2
    strip = Image.open(tmp_path / "g" / "interpolate" / f"u{ord('永'):04X}.png")
    size = Geometry.from_dict(json.loads((tmp_path / "g" / "manifest.json").read_text())["geometry"]).image_size
    assert strip.size == (4 * size, size)
    frames = np.asarray(strip).reshape(size, 4, size).transpose(1, 0, 2)
    # the strip shows the model's blend of styles, which no one font lends its glyphs to
    first = generate_glyphs(GenerateJob(checkpoint=tiny_run, style="3", out=tmp_path / "p", chars=["永"],
                                        device="cpu", exemplars=False), progress=False, log=lambda line: None)
    assert first.glyphs == 1
    assert np.array_equal(frames[0], np.asarray(Image.open(tmp_path / "p" / f"u{ord('永'):04X}.png")))


def test_style_by_name_and_errors_list_the_styles(workdir, tiny_run, tmp_path):
    name = next(s["name"] for s in Generation(tiny_run, "cpu").meta["styles"] if s["id"] == STYLE)
    result = invoke(workdir, "generate", "--style", name, "--chars", "永", "--out", str(tmp_path / "by-name"))
    assert result.exit_code == 0, result.output
    for bad in ("99", "no-such-style"):
        result = invoke(workdir, "generate", "--style", bad, "--out", str(tmp_path / "bad"))
        assert result.exit_code == 1 and "unknown style" in result.output and name in result.output
        assert not (tmp_path / "bad").exists()


def test_missing_and_corrupt_checkpoints_give_clear_errors(tmp_path):
    result = invoke(tmp_path / "empty", "generate", "--style", "1")
    assert result.exit_code == 1 and "train first" in result.output
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really a checkpoint" * 10)
    result = invoke(tmp_path, "generate", "--style", "1", "--checkpoint", str(broken), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and "not a readable fontgen checkpoint" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_structure_check_flags_empty_and_shattered_glyphs():
    source = np.full((3, 32, 32), 255, np.uint8)
    source[:, 14:18, 4:28] = 0  # one bar
    good = source[0].copy()
    empty = np.full((32, 32), 255, np.uint8)
    shattered = np.full((32, 32), 255, np.uint8)
    shattered[2:30:4, 2:30:4] = 0
    shattered[3:30:4, 2:30:4] = 0
    shattered[2:30:4, 3:30:4] = 0
    shattered[3:30:4, 3:30:4] = 0
    flags = structure_flags(np.stack([good, empty, shattered]), source)
    assert flags == [[], ["nearly-empty"], ["fragmented"]]


def test_evaluate_reports_metrics_on_held_out_glyphs(workdir, small_dataset, tiny_run):
    result = invoke(workdir, "evaluate", "--display-glyphs", "2")  # display size in depth: test_evaluate.py
    assert result.exit_code == 0, result.output
    metrics = json.loads((tiny_run.parent / "eval" / "metrics.json").read_text(encoding="utf-8"))
    data = load_dataset(small_dataset)
    assert metrics["overall"]["glyphs"] == len(data.pair_indices("val"))
    for entry in [metrics["overall"], *metrics["styles"].values()]:
        assert 0 <= entry["l1"] <= entry["rmse"] <= 1 and -1 <= entry["ssim"] <= 1 and 0 <= entry["iou"] <= 1
    assert "overall" in result.output and "SSIM" in result.output
    assert (tiny_run.parent / "eval" / "worst.png").stat().st_size > 500
    compare = invoke(workdir, "evaluate", "--compare", str(tiny_run.parent), "--display-glyphs", "2")
    assert compare.exit_code == 0, compare.output
    assert "IOU A" in compare.output and "IOU B" in compare.output
    display = compare.output[compare.output.index("display size (256 px)"):]
    assert "MORE A" in display and "MORE B" in display and "EDGE B" in display


def test_contact_sheet_shows_every_glyph_flagged_first(tmp_path):
    from fontgen.generate import write_contact_sheet

    rng = np.random.default_rng(0)
    count = 250
    chars = [chr(0x4E00 + i) for i in range(count)]
    images = rng.integers(0, 255, (count, 64, 64), dtype=np.uint8)
    flags = [[] for _ in range(count)]
    flags[-1] = ["fragmented"]
    (tmp_path / "contact-sheet-3.png").write_bytes(b"stale page of an earlier, longer run")
    pages = write_contact_sheet(tmp_path / "contact-sheet.png", chars, images, images, flags)
    assert [p.name for p in pages] == ["contact-sheet.png", "contact-sheet-2.png"]
    assert not (tmp_path / "contact-sheet-3.png").exists()
    first = np.asarray(Image.open(pages[0]))
    assert first[16 + 4, 4 + 10] == 0  # the first tile has the black frame of a flagged glyph
    assert Image.open(pages[1]).size[1] < first.shape[0]  # 10 glyphs on page 2


def test_repair_is_recorded_and_no_repair_writes_the_raw_output_calibrated(tiny_run, tmp_path):
    chars = list("永国三八")
    generation = Generation(tiny_run, "cpu")
    style = {STYLE: 1.0}
    raw = generation.run(generation.render_sources(chars), style)
    repaired, _ = generation.repair(raw, chars)
    for repair, expected in ((False, raw), (True, repaired)):
        out = tmp_path / f"r{int(repair)}"
        generate_glyphs(GenerateJob(checkpoint=tiny_run, style=str(STYLE), out=out, chars=chars, device="cpu",
                                    repair=repair, exemplars=False), progress=False, log=lambda line: None)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["repaired"] is repair
        written = np.stack([np.asarray(Image.open(out / f"u{ord(ch):04X}.png")) for ch in chars])
        assert np.array_equal(written, calibrate_ink(expected))  # last, whatever came before
    counts = generation.source_pieces(chars)
    assert counts[2] == 3 and counts[3] == 2  # 三: three strokes, 八: two, counted at display size


def test_exemplars_redraw_before_the_repair_and_are_recorded(tiny_run, tmp_path, sample_styles):
    chars = list("永国三八")
    generation = Generation(tiny_run, "cpu")
    sources = generation.render_sources(chars)
    raw = generation.run(sources, {STYLE: 1.0})
    bank = generation.exemplars(STYLE)
    assert len(bank) > 500 and set(bank.codepoints.tolist()) <= set(open_font(sample_styles[STYLE]).getBestCmap())
    expected, _ = generation.repair(generation.redraw(raw, chars, sources, bank), chars)
    assert not np.array_equal(expected, generation.repair(raw, chars)[0])
    out = tmp_path / "ex"
    logged = []
    generate_glyphs(GenerateJob(checkpoint=tiny_run, style=str(STYLE), out=out, chars=chars, device="cpu"),
                    progress=False, log=logged.append)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exemplars"] == len(bank) and any("redrawn from" in line for line in logged)
    written = np.stack([np.asarray(Image.open(out / f"u{ord(ch):04X}.png")) for ch in chars])
    assert np.array_equal(written, calibrate_ink(expected))
    blend = tmp_path / "blend"  # a blend of styles has no one font to lend its glyphs
    generate_glyphs(GenerateJob(checkpoint=tiny_run, style=f"3:0.5,{STYLE}:0.5", out=blend, chars=chars,
                                device="cpu"), progress=False, log=lambda line: None)
    assert json.loads((blend / "manifest.json").read_text())["exemplars"] == 0


def test_samples_of_a_model_without_dropout_differ_by_seed_and_stay_in_place(small_dataset, tmp_path):
    """A model trained without dropout (the cpu preset) still gives the reviewer other drawings:
    the source moved by up to 2 px and the drawing moved back, a different one per seed."""
    import torch

    from fontgen.generate import SAMPLE_SHIFT, Generation, sample_offsets, shift_glyphs
    from fontgen.train import TrainConfig, train

    torch.manual_seed(3)
    offsets = sample_offsets(2000)
    assert offsets.abs().max() == SAMPLE_SHIFT and not (offsets == 0).all(dim=1).any()
    assert len({tuple(o) for o in offsets.tolist()}) == (2 * SAMPLE_SHIFT + 1) ** 2 - 1
    x = torch.rand(2, 1, 16, 16)
    moved = shift_glyphs(x, torch.tensor([[1, -2], [0, 2]]))
    assert torch.equal(moved[0, 0, 1:, :14], x[0, 0, :15, 2:]) and (moved[0, 0, 0] == 1).all()
    assert torch.equal(shift_glyphs(moved, -torch.tensor([[1, -2], [0, 2]]))[:, :, 2:-2, 2:-2], x[:, :, 2:-2, 2:-2])

    checkpoint = train(TrainConfig(data=small_dataset, runs_dir=tmp_path / "runs", preset="tiny", steps=20,
                                   dropout=0.0, perceptual_weight=0.0, progress=False, sample_every=1000), log=None)
    generation = Generation(checkpoint, "cpu")
    sources = generation.render_sources(list("永和"))
    plain = generation.run(sources, {3: 1.0})
    drawn = {}
    for seed in (1, 2, 1):
        torch.manual_seed(seed)
        drawn.setdefault(seed, []).append(generation.run(sources, {3: 1.0}, sample=True))
    assert np.array_equal(*drawn[1])  # the same seed, the same drawing
    assert not np.array_equal(drawn[1][0], drawn[2][0]) and not np.array_equal(drawn[1][0], plain)
    assert np.array_equal(generation.run(sources, {3: 1.0}), plain)  # sampling left the model deterministic

    class Copy(torch.nn.Module):  # an exactly shift-equivariant "model": the drawing is the source
        def style_from_weights(self, blend):
            return blend

        def forward(self, x, style=None):
            return x

    generation.generator = Copy()
    torch.manual_seed(4)
    moved_back = generation.run(sources, {3: 1.0}, sample=True)
    inside = (slice(None), slice(SAMPLE_SHIFT, -SAMPLE_SHIFT), slice(SAMPLE_SHIFT, -SAMPLE_SHIFT))
    assert np.array_equal(moved_back[inside], sources[inside])  # moved back: the glyph stays where it was


def test_ensemble_outvotes_a_flaw_drawn_at_one_place_and_keeps_the_glyph_in_place(tiny_run, tmp_path):
    """The default drawing is the mean of five placements 1 px apart, each moved back: ink the generator
    puts at a fixed place in its image (a speck) lands on five different glyph pixels and fades below
    half ink, while the glyph itself (drawn at every placement) stays exactly where it was."""
    import torch

    generation = Generation(tiny_run, "cpu")
    sources = generation.render_sources(list("永三"))
    size = generation.image_size

    class CopyWithSpeck(torch.nn.Module):  # shift-equivariant except for one black pixel at (20, 5)
        def style_from_weights(self, blend):
            return blend

        def forward(self, x, style=None):
            y = x.clone()
            y[:, :, 20, 5] = -1
            return y

    generation.generator = CopyWithSpeck()
    one_pass = generation.run(sources, {STYLE: 1.0}, ensemble=False)
    mean = generation.run(sources, {STYLE: 1.0})
    assert (one_pass[:, 20, 5] == 0).all() and (sources[:, 20, 5] == 255).all()  # a speck on paper
    assert (mean[:, 20, 5] >= 200).all()  # 1 of 5 drawings: 20% ink, below the half that counts as ink
    away = np.ones((size, size), bool)
    away[:1], away[-1:], away[:, :1], away[:, -1:] = False, False, False, False  # paper moved in at the edges
    away[19:22, 4:7] = False  # the speck and the pixels it lands on
    assert np.abs(mean.astype(int) - sources.astype(int))[:, away].max() <= 1  # the glyph is not moved or blurred

    # generate records it; --no-ensemble writes the one pass
    chars = list("永三")
    for ensemble in (True, False):
        out = tmp_path / f"e{int(ensemble)}"
        generate_glyphs(GenerateJob(checkpoint=tiny_run, style=str(STYLE), out=out, chars=chars, device="cpu",
                                    repair=False, ensemble=ensemble, exemplars=False),
                        progress=False, log=lambda line: None)
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["ensemble"] is ensemble
        written = np.stack([np.asarray(Image.open(out / f"u{ord(ch):04X}.png")) for ch in chars])
        expected = Generation(tiny_run, "cpu").run(sources, {STYLE: 1.0}, ensemble=ensemble)
        assert np.array_equal(written, calibrate_ink(expected))


@pytest.mark.parametrize("style_id", [3, 9, 14])  # Song extra-light, AR PL Song, Hanazono Mincho: hairlines
def test_calibrated_ink_gives_a_soft_drawing_back_its_weight(sample_styles, style_id):
    """A real 三 softened as the model draws (Gaussian blur) loses ink at the 50% level; the
    calibration traces it at DRAWING_INK_LEVEL instead, which gives that ink back."""
    from scipy import ndimage

    from fontgen.fonts import Geometry, GlyphRenderer, open_font
    spec = sample_styles[style_id]
    real = GlyphRenderer(spec, Geometry.for_font(open_font(spec), 64)).render("三")
    soft = np.clip(ndimage.gaussian_filter(real.astype(float), 0.8), 0, 255).round().astype(np.uint8)
    calibrated = calibrate_ink(soft)
    assert np.array_equal(calibrated < 128, soft <= 133)  # ink above ~47.5% (grey 133 of 255) becomes ink
    assert np.array_equal(calibrated == 255, soft == 255) and np.array_equal(calibrated == 0, soft == 0)
    lost, left = abs(int((soft < 128).sum()) - int((real < 128).sum())), abs(int((calibrated < 128).sum()) - int((real < 128).sum()))
    assert left < lost
