"""Shared fixtures: the real sample fonts and a small real dataset rendered from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fontgen.charsets import load_charset
from fontgen.fonts import FontSpec
from fontgen.render import SAMPLE_DIR, default_job, render_dataset


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run as fast on one thread, and a shared 2-core machine stays usable
    (modules ask for it with pytestmark = pytest.mark.usefixtures("one_thread"))."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def interrupt_training(monkeypatch):
    """interrupt_training(n): from now on Trainer.train_step raises KeyboardInterrupt, as Ctrl-C
    would, when it is called for step n (0-based); the test's monkeypatch.undo() lifts it."""
    from fontgen.train import Trainer

    def arm(at: int) -> None:
        real_step = Trainer.train_step

        def interrupted(self, step, *args):
            if step == at:
                raise KeyboardInterrupt
            return real_step(self, step, *args)

        monkeypatch.setattr(Trainer, "train_step", interrupted)

    return arm


@pytest.fixture(scope="session")
def sample_manifest() -> dict:
    path = SAMPLE_DIR / "manifest.json"
    assert path.is_file(), "fonts_sample/manifest.json is part of the repository"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def sample_source(sample_manifest) -> FontSpec:
    src = sample_manifest["source"]
    return FontSpec(SAMPLE_DIR / src["path"], int(src.get("face", 0)))


@pytest.fixture(scope="session")
def sample_styles(sample_manifest) -> dict[int, FontSpec]:
    return {int(s["id"]): FontSpec(SAMPLE_DIR / s["path"], int(s.get("face", 0))) for s in sample_manifest["styles"]}


@pytest.fixture(scope="session")
def sample_chars(sample_manifest) -> list[str]:
    return load_charset(str(SAMPLE_DIR / sample_manifest["charset"]))


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory, sample_chars) -> Path:
    """60 characters of every sample style at 64 px: real glyphs, small enough for CPU tests."""
    out = tmp_path_factory.mktemp("data") / "data"
    job = default_job(out, image_size=64, val_fraction=0.2, workers=2)
    job.chars = sample_chars[::max(1, len(sample_chars) // 60)][:60]
    render_dataset(job, progress=False, log=lambda line: None)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, small_dataset) -> Path:
    """A tiny model trained a few steps on the small dataset: WORKDIR/runs/tiny/checkpoint.pt."""
    from fontgen.train import TrainConfig, train

    workdir = tmp_path_factory.mktemp("work")
    config = TrainConfig(data=small_dataset, runs_dir=workdir / "runs", run=workdir / "runs" / "tiny",
                         preset="tiny", device="cpu", steps=12, perceptual_weight=0.0, sample_every=1000,
                         checkpoint_every=1000, progress=False)
    return train(config, log=lambda line: None)
