"""More than one source font: every character drawn by each, the model learning from all and
generate averaging what it draws from each (render -> train -> generate -> evaluate)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from fontgen import render as render_step
from fontgen.cli import cli
from fontgen.dataset import load_dataset
from fontgen.errors import FontgenError
from fontgen.fonts import GlyphRenderer, coverage_of
from fontgen.generate import PRIMARY_WEIGHT, Generation
from fontgen.train import TrainConfig, Trainer, train

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_source_data(tmp_path_factory, sample_source, sample_styles, sample_chars):
    """The sans and the serif bold as sources of the Mincho: the serif lacks some of the characters."""
    serif_bold, mincho = sample_styles[4], sample_styles[14]
    has = set(coverage_of(serif_bold, sample_chars).present)
    chars = [ch for ch in sample_chars if ch not in has][:6] + [ch for ch in sample_chars if ch in has][:34]
    out = tmp_path_factory.mktemp("sources") / "data"
    render_step.render_dataset(render_step.RenderJob(
        source=sample_source, more_sources=[serif_bold], targets=[render_step.StyleFont(0, "mincho", mincho)],
        chars=chars, charset_name="test", out=out, image_size=64, val_fraction=0.2, workers=1),
        progress=False, log=lambda line: None)
    return out, chars, has


@pytest.fixture(scope="module")
def two_source_run(tmp_path_factory, two_source_data):
    data = two_source_data[0]
    runs = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(data=data, runs_dir=runs, run=runs / "run", preset="tiny", steps=6, progress=False,
                             sample_every=1000, threads=1), log=lambda m: None)


def test_each_source_draws_every_character_and_the_primary_stands_in(two_source_data, sample_source, sample_styles):
    data_dir, chars, serif_has = two_source_data
    data = load_dataset(data_dir)
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    assert [s["family"] for s in manifest["sources"]] == [f.family for f in data.source_fonts]
    assert manifest["source"] == manifest["sources"][0] and data.views == 2
    assert data.source.shape == (2 * len(chars), 64, 64)
    views = data.source_views(np.arange(len(chars)))
    primary = GlyphRenderer(sample_source, data.source_fonts[0].geometry)
    serif = GlyphRenderer(sample_styles[4], data.source_fonts[1].geometry)
    for i, cp in enumerate(data.codepoints):
        ch = chr(int(cp))
        assert np.array_equal(views[0, i], primary.render(ch))
        assert np.array_equal(views[1, i], serif.render(ch) if ch in serif_has else views[0, i])
    assert not np.array_equal(views[0, 10], views[1, 10])  # a real second drawing
    assert np.array_equal(data.source[:len(chars)], views[0])  # one-source readers see the primary


def test_the_same_font_twice_or_as_a_target_is_refused(tmp_path, sample_source, sample_styles, sample_chars):
    for more, target, message in (([sample_source], sample_styles[14], "is the same font as"),
                                  ([sample_styles[4]], sample_styles[4], "is the source font itself")):
        with pytest.raises(FontgenError, match=message):
            render_step.render_dataset(render_step.RenderJob(
                source=sample_source, more_sources=more, targets=[render_step.StyleFont(0, "t", target)],
                chars=sample_chars[:10], charset_name="test", out=tmp_path / "data", image_size=64, workers=1),
                progress=False, log=lambda line: None)
        assert not (tmp_path / "data").exists()


def test_training_sees_both_sources_the_same_way_on_every_resume(two_source_data, tmp_path):
    data = load_dataset(two_source_data[0])
    trainer = Trainer(TrainConfig(data=data.root, runs_dir=tmp_path, run=tmp_path / "r", preset="tiny", steps=40,
                                  progress=False), log=None)
    trainer._setup()
    feed = trainer.feed
    seen = set()
    for step in range(20):
        rows = feed.batch_rows(step)
        ab, _ = feed.load_rows(rows, step)
        views = data.source_views(np.asarray(data.pair_char)[rows])
        drawn = ab[:len(rows)].numpy()
        for i in range(len(rows)):
            matches = {v for v in range(2) if np.array_equal(drawn[i], views[v, i])}
            assert matches, "every source glyph is one of the character's drawings"
            seen |= matches if len(matches) == 1 else set()
        assert np.array_equal(feed.load_rows(rows, step)[0], ab)  # the same step draws the same sources
    assert seen == {0, 1}
    rows = feed.batch_rows(0)
    assert np.array_equal(feed.load_rows(rows)[0][:len(rows)].numpy(),
                          data.source[np.asarray(data.pair_char)[rows]])  # no step: the primary


def test_generate_aligns_and_averages_the_drawings_of_every_source_the_primarys_twice(two_source_data, two_source_run, tmp_path):
    data_dir, chars, _ = two_source_data
    generation = Generation(two_source_run, "cpu")
    assert [spec.path.name for spec, _ in generation.sources] == [f.spec.path.name for f in load_dataset(data_dir).source_fonts]
    views = generation.render_views(chars[:12])
    assert views.shape == (2, 12, 64, 64)
    assert np.array_equal(views, load_dataset(data_dir).source_views(np.arange(12)))  # as render stored them
    mean = generation.run(views, {0: 1.0}, ensemble=False, align=False).astype(int)
    each = [generation.run(view, {0: 1.0}, ensemble=False).astype(int) for view in views]
    assert np.abs(mean - (PRIMARY_WEIGHT * each[0] + each[1]) / (PRIMARY_WEIGHT + 1)).max() <= 1  # uint8 rounding
    assert np.abs(each[0] - each[1]).max() > 16  # two drawings (of a 6-step model), not one
    aligned = generation.run(views, {0: 1.0}, ensemble=False).astype(int)  # the default: moved onto each other first
    assert np.abs(aligned - mean).max() > 0 and np.abs(aligned - mean).mean() < 16
    torch.manual_seed(3)
    assert generation.run(views, {0: 1.0}, sample=True).shape == (12, 64, 64)

    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "generate", "--style", "0", "--checkpoint", str(two_source_run),
                                      "--chars", "".join(chars[:8]), "--out", str(tmp_path / "glyphs")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "glyphs").glob("u*.png"))) == 8
    manifest = json.loads((tmp_path / "glyphs" / "manifest.json").read_text())
    assert manifest["sources"] == 2 and manifest["aligned"] is True
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "generate", "--style", "0", "--checkpoint", str(two_source_run),
                                      "--chars", "".join(chars[:8]), "--out", str(tmp_path / "plain"), "--no-align"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "plain" / "manifest.json").read_text())["aligned"] is False
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "evaluate", "--checkpoint", str(two_source_run),
                                      "--display-glyphs", "3", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    held_out = len(load_dataset(data_dir).pair_indices("val"))
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["display"]["overall"]["glyphs"] == \
        min(3, held_out) > 0


def test_review_draws_alternatives_from_every_source(two_source_data, two_source_run, tmp_path):
    from PIL import Image

    from fontgen.review import ReviewSession

    chars = two_source_data[1][:3]
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "generate", "--style", "0", "--checkpoint",
                                      str(two_source_run), "--chars", "".join(chars), "--out", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    key = f"u{ord(chars[0]):04X}"
    answer = ReviewSession(tmp_path / "g").alternatives({"glyph": key, "count": 2})
    assert answer["made"] == [f"variants/{key}-s1.png", f"variants/{key}-s2.png"]
    drawn = [np.asarray(Image.open(tmp_path / "g" / name)) for name in answer["made"]]
    assert drawn[0].shape == (64, 64) and not np.array_equal(drawn[0], drawn[1])  # a drawing per seed


def test_evaluate_refuses_a_dataset_of_other_sources(two_source_run, small_dataset, tmp_path):
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "evaluate", "--checkpoint", str(two_source_run),
                                      "--data", str(small_dataset), "--out", str(tmp_path / "eval")])
    assert result.exit_code == 1 and "source fonts" in result.output
    assert not (tmp_path / "eval").exists()


def test_complete_uses_every_candidate_that_draws_what_the_target_lacks(sample_source, sample_styles, sample_chars):
    sans_bold, serif_bold, serif_black = (sample_styles[i] for i in (1, 4, 5))
    lines = []
    # both draw (nearly) all the black serif lacks: the nearer style first, the other as a second drawing
    assert render_step.choose_sources(serif_black, [sans_bold, serif_bold], sample_chars, lines.append) == \
        [serif_bold, sans_bold]
    assert lines[0].startswith(f"source * {serif_bold}") and lines[1].startswith(f"source + {sans_bold}")
    # one that draws clearly less is left out, however near its style
    lines.clear()
    assert render_step.choose_sources(serif_black, [serif_bold, sample_source], sample_chars, lines.append) == \
        [sample_source]
    assert lines[1].startswith(f"source   {serif_bold}") and lines[1].endswith("not used")
