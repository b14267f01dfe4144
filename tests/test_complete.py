"""`fontgen complete`: one command from a partial font to a completed one, and it resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fontTools.ttLib import TTFont

from fontgen.charsets import load_charset
from fontgen.cli import cli
from fontgen.fonts import coverage_of
from fontgen.render import SAMPLE_DIR

HANDWRITING = SAMPLE_DIR / "style12_handwriting_seto.ttf"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_complete_a_font_then_resume_after_an_interruption(tmp_path, monkeypatch, sample_source, sample_styles,
                                                           interrupt_training):
    from fontgen.fonts import FontSpec

    chars = load_charset(str(SAMPLE_DIR / "charset.txt"))[:60]
    lacks = [ch for ch in chars if ch in coverage_of(FontSpec(HANDWRITING), chars).missing]
    assert lacks, "the handwriting sample lacks some of the first 60 characters"
    (tmp_path / "chars.txt").write_text("".join(chars), encoding="utf-8")
    work = tmp_path / "work"
    args = ["--workdir", str(work), "complete", str(HANDWRITING), "--charset", str(tmp_path / "chars.txt"),
            "--preset", "tiny", "--threads", "1", "--min-iou", "0.3",
            "--source", str(sample_styles[4].path), "--source", str(sample_source.path)]  # a serif bold, the sans
    runner = CliRunner()
    result = runner.invoke(cli, args + ["--steps", "4"])
    assert result.exit_code == 0, result.output
    font_path = work / "fonts" / "style12_handwriting_seto-fontgen.ttf"
    assert f"font:      {font_path}" in result.output and "display:   held-out at 256 px" in result.output
    # the handwriting is nearer the regular sans than the serif bold, and the sans draws more of it
    assert f"complete: source * {sample_source}" in result.output and f"source:    {sample_source}" in result.output
    assert "one source font" not in result.output
    manifest = json.loads((work / "complete" / HANDWRITING.stem / "data" / "manifest.json").read_text("utf-8"))
    assert Path(manifest["source"]["path"]) == sample_source.path.resolve()
    assert manifest["image_size"] == 64  # rendered at the tiny preset's model size
    font = TTFont(str(font_path))
    cmap = font.getBestCmap()
    left_out_file = font_path.with_name(font_path.stem + "-left-out.txt")
    left_out = left_out_file.read_text(encoding="utf-8") if left_out_file.exists() else ""
    # every character of the charset: the font's own, generated, or listed as left out (a 4-step model)
    assert all(ord(ch) in cmap or f"U+{ord(ch):04X}" in left_out for ch in chars)
    added = sum(ord(ch) in cmap for ch in lacks)
    left = len(lacks) - added
    assert f"({added} glyphs added" in result.output and (not left or f"{left} left out)" in result.output)
    assert font["name"].getDebugName(1).endswith("fontgen")

    interrupt_training(6)
    result = runner.invoke(cli, args + ["--steps", "8"])
    assert result.exit_code == 1 and "interrupted" in result.output
    monkeypatch.undo()
    result = runner.invoke(cli, args + ["--steps", "8"])
    assert result.exit_code == 0, result.output
    assert "already holds these fonts and characters" in result.output  # render was kept
    assert "resuming" in result.output and "at step 4" in result.output  # training went on from its checkpoint
    assert "model:     step 8" in result.output
    result = runner.invoke(cli, args + ["--steps", "8"])  # nothing left to do but writing and scoring
    assert result.exit_code == 0 and "kept from the last run: render, train, generate" in result.output


def test_on_a_cpu_one_font_trains_a_128_px_model_rendered_at_its_size(tmp_path, sample_source):
    from fontgen.checkpoint import load_checkpoint

    chars = load_charset(str(SAMPLE_DIR / "charset.txt"))[:60]
    work = tmp_path / "work"
    result = CliRunner().invoke(cli, ["--workdir", str(work), "complete", str(HANDWRITING), "--chars", "".join(chars),
                                      "--preset", "cpu", "--steps", "2", "--threads", "1", "--device", "cpu",
                                      "--min-iou", "0"])
    assert result.exit_code == 0, result.output
    folder = work / "complete" / HANDWRITING.stem
    assert json.loads((folder / "data" / "manifest.json").read_text("utf-8"))["image_size"] == 128
    model = load_checkpoint(folder / "run" / "checkpoint.pt")["model_config"]
    assert (model["image_size"], model["ngf"], model["ndf"]) == (128, 12, 8)
    assert "128 px, ngf 12, ndf 8, batch 16, 2 steps" in result.output
    assert "one source font; give --source more than once" in result.output  # the default source alone


def test_a_run_begun_under_another_default_model_goes_on_as_it_was(tmp_path, sample_source):
    """A work folder trained before the cpu default changed (ngf 8, say) resumes with its own model,
    instead of refusing because today's default differs."""
    from fontgen import complete as complete_step
    from fontgen.checkpoint import load_checkpoint
    from fontgen.fonts import FontSpec

    chars = load_charset(str(SAMPLE_DIR / "charset.txt"))[:40]
    work = tmp_path / "work"
    target = FontSpec(HANDWRITING)
    older = complete_step.CompleteJob(target=target, sources=[sample_source], chars=chars,
                                      work=complete_step.work_folder(work, target), fonts_dir=work / "fonts",
                                      preset="cpu", steps=2, threads=1, device="cpu", min_iou=0.0,
                                      train_options={"ngf": 8})
    complete_step.complete_font(older, progress=False, log=lambda line: None)
    result = CliRunner().invoke(cli, ["--workdir", str(work), "complete", str(HANDWRITING), "--chars", "".join(chars),
                                      "--source", str(sample_source.path), "--preset", "cpu", "--steps", "3",
                                      "--threads", "1", "--device", "cpu", "--min-iou", "0"])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output and "model:     step 3" in result.output
    model = load_checkpoint(work / "complete" / HANDWRITING.stem / "run" / "checkpoint.pt")["model_config"]
    assert (model["image_size"], model["ngf"], model["ndf"]) == (128, 8, 8)
