"""`fontgen evaluate` at display size: the product's own path, on a tiny model trained on real glyphs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from fontgen.charsets import is_ideograph
from fontgen.cli import cli
from fontgen.dataset import load_dataset
from fontgen.evaluate import EvaluateJob, display_subset, sheet_candidates, worst_display
from fontgen.fonts import FontSpec, open_font
from fontgen.metrics import DISPLAY_METRICS, speck_area

PER_STYLE = 3  # display-scored glyphs per style: enough to check the path, fast on 2 cores


def test_evaluate_writes_the_display_size_figures(tmp_path, small_dataset, tiny_run):
    data = load_dataset(small_dataset)
    val = data.pair_indices("val")
    held_out = {int(s): int(n) for s, n in zip(*np.unique(np.asarray(data.pair_style)[val], return_counts=True))}
    started = time.perf_counter()
    # the model's own drawing: lent glyphs of the font would hide some of a 12-step model's noise
    result = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "eval"),
                                      "--device", "cpu", "--display-glyphs", str(PER_STYLE), "--no-exemplars"])
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    display = metrics["display"]
    assert display["display_size"] == 256 and display["model_size"] == 64
    assert display["glyphs_per_style_limit"] == PER_STYLE and display["speck_area"] == speck_area(256)
    assert display["trace_options"]["min_speck_area"] == 3.0 and display["trace_options"]["smooth"] == 0.0
    assert {int(k) for k in display["styles"]} == set(held_out)
    for style, entry in display["styles"].items():
        assert entry["glyphs"] == min(PER_STYLE, held_out[int(style)])
        assert entry["name"] == metrics["styles"][style]["name"]
    assert display["overall"]["glyphs"] == sum(min(PER_STYLE, n) for n in held_out.values())
    for entry in [display["overall"], *display["styles"].values(),
                  display["reference"]["overall"], *display["reference"]["styles"].values()]:
        assert set(DISPLAY_METRICS) | {"glyphs", "display_size"} <= set(entry) and entry["display_size"] == 256
        assert 0 <= entry["iou"] <= 1 and -1 <= entry["ssim"] <= 1 and 0 <= entry["l1"] <= 1
        assert 0 <= entry["pieces_more"] <= 1 and 0 <= entry["pieces_fewer"] <= 1 and entry["edge_ratio"] > 0
    # the real glyphs at 64 px through the same path land on the real glyphs at 256 px: the path
    # (em box, tracing, rasterising) is sound, whatever a 12-step model draws
    reference = display["reference"]["overall"]
    assert reference["iou"] > 0.8 and reference["ssim"] > 0.75 and 0.85 < reference["edge_ratio"] < 1.15
    assert reference["pieces_more"] < 0.2
    # a 12-step model draws grey noise about mid-grey: traced, its glyphs fall into the wrong pieces
    # (bits of it, or one blot once the ink calibration tips the grey over 50%), far from the real ones
    drawn = display["overall"]
    assert drawn["pieces_more"] + drawn["pieces_fewer"] > 0.5 and drawn["l1"] > 3 * reference["l1"], drawn
    assert display["overall"]["iou"] < reference["iou"]
    assert display["seconds"] > 0 and display["ms_per_glyph"] > 0
    print(f"\ndisplay scoring: {display['ms_per_glyph']} ms/glyph over {display['overall']['glyphs']} glyphs "
          f"(generated and reference traced); evaluate took {seconds:.1f} s")

    out = result.output
    block = out[out.index("display size (256 px)"):]
    assert "MORE" in block and "FEWER" in block and "EDGE" in block and "real glyph traced (ref)" in block
    assert block.index("overall") < block.index("real glyph traced (ref)")
    assert "worst-display.png" in out
    with Image.open(tmp_path / "eval" / "worst-display.png") as sheet:
        assert sheet.width >= 2 * 256 and sheet.height >= 256  # real | outline, at display size

    assert metrics["ensemble"] is True and metrics["exemplars"] is False  # drawn as generate draws by default
    assert all(entry["exemplars"] == 0 for entry in metrics["styles"].values())

    # --no-display: model-size figures only, and no sheet left from before; --no-ensemble: one pass of G;
    # the font's own glyphs lent by default, none of the held-out ones
    again = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(tiny_run), "--out", str(tmp_path / "eval"),
                                     "--device", "cpu", "--no-display", "--no-ensemble"])
    assert again.exit_code == 0, again.output
    single = json.loads((tmp_path / "eval" / "metrics.json").read_text(encoding="utf-8"))
    assert "display" not in single and single["ensemble"] is False and single["exemplars"] is True
    fonts = {s.id: open_font(FontSpec(Path(s.font.path), s.font.face)).getBestCmap() for s in data.styles}
    for style, entry in single["styles"].items():
        has = sum(1 for cp in fonts[int(style)] if is_ideograph(chr(cp)))
        assert 0 < entry["exemplars"] <= has - entry["glyphs"]  # its ideographs, the held-out ones kept back
    assert single["overall"]["l1"] != metrics["overall"]["l1"]
    assert not (tmp_path / "eval" / "worst-display.png").exists()
    assert "display size" not in again.output and "IOU" in again.output


def test_display_glyphs_default_to_all_and_limits_spread_evenly():
    assert EvaluateJob(checkpoint=None, out=None).display_glyphs is None
    assert list(display_subset(5, None)) == [0, 1, 2, 3, 4] and list(display_subset(5, 9)) == [0, 1, 2, 3, 4]
    assert list(display_subset(10, 3)) == [0, 4, 9] and list(display_subset(10, 1)) == [0]


def record(style, cp, iou, more=0.0, fewer=0.0):
    blank = np.full((8, 8), 255, np.uint8)
    return (style, cp, blank, blank, {"iou": iou, "pieces_more": more, "pieces_fewer": fewer, "edge_ratio": 1.0,
                                      "pieces_generated": 1, "pieces_real": 1})


def test_worst_display_shows_broken_and_merged_glyphs_first():
    good = [record(0, 0x4E00 + i, 0.5 + i / 100) for i in range(10)]
    broken = record(1, 0x4E8C, 0.97, more=1.0)  # a clean-looking outline with a stroke cut: high IoU
    merged = record(2, 0x4E09, 0.95, fewer=1.0)
    chosen = worst_display(good + [broken, merged], worst=3)
    assert [r[1] for r in chosen[:2]] == [0x4E09, 0x4E8C]  # wrong piece counts first, worst IoU first
    assert [r[1] for r in chosen[2:]] == [0x4E00, 0x4E01, 0x4E02]  # then the worst by IoU
    assert worst_display(good, worst=2) == good[:2]


def test_sheet_candidates_keep_what_the_sheet_shows():
    rng = np.random.default_rng(0)
    records = [record(i % 3, 0x4E00 + i, float(rng.random()), more=float(rng.random() < 0.3),
                      fewer=float(rng.random() < 0.1)) for i in range(300)]
    whole = worst_display(records, 5)
    kept: list = []
    for start in range(0, 300, 40):  # pruned batch by batch, as score_display does per style
        kept = sheet_candidates(kept + records[start:start + 40], 5)
        assert len(kept) <= 15
    assert [r[1] for r in worst_display(kept, 5)] == [r[1] for r in whole]


def test_a_missing_font_fails_before_the_work_and_writes_nothing(tmp_path, small_dataset, tiny_run):
    """Display scoring needs the styles' fonts: a moved font is named at once, and no half-written
    folder is left to block the rerun."""
    import shutil

    moved = tmp_path / "data"
    shutil.copytree(small_dataset, moved)
    manifest = json.loads((moved / "manifest.json").read_text(encoding="utf-8"))
    manifest["styles"][1]["path"] = str(tmp_path / "gone.otf")
    (moved / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "eval"
    args = ["evaluate", "--checkpoint", str(tiny_run), "--data", str(moved), "--out", str(out), "--device", "cpu",
            "--display-glyphs", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "style 1" in result.output and "gone.otf" in result.output
    assert "--no-display --no-exemplars" in result.output  # the font draws the real glyphs and lends its own
    assert "held-out glyphs" not in result.output  # it stopped before generating
    assert not out.exists()
    result = CliRunner().invoke(cli, args[:-2] + ["--no-display"])
    assert result.exit_code != 0 and "pass --no-exemplars to skip" in result.output and not out.exists()
    result = CliRunner().invoke(cli, args[:-2] + ["--no-display", "--no-exemplars"])
    assert result.exit_code == 0, result.output
    assert (out / "metrics.json").is_file()
