"""Training: real glyphs from fonts_sample/, tiny models (64 px, ngf 8, batch 4), CPU only."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from fontgen import losses
from fontgen.checkpoint import (load_checkpoint, load_generator, read_latest, resolve_checkpoint, save_checkpoint,
                                update_latest)
from fontgen.errors import FontgenError
from fontgen.model import ModelConfig
from fontgen.render import default_job, render_dataset
from fontgen.train import PRESETS, TrainConfig, Trainer, sample_grid, train

STYLE_IDS = (1, 7, 12)  # bold sans, kai, handwriting: visibly different styles


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def train_data(tmp_path_factory) -> Path:
    """40 characters x 3 styles of fonts_sample/ at 64 px, rendered by fontgen's renderer."""
    out = tmp_path_factory.mktemp("train-data") / "data"
    job = default_job(out, image_size=64, val_fraction=0.2, workers=1)
    job.targets = [t for t in job.targets if t.id in STYLE_IDS]
    job.chars = job.chars[::max(1, len(job.chars) // 40)][:40]
    render_dataset(job, progress=False, log=lambda line: None)
    return out


def tiny(data: Path, root: Path, **overrides) -> TrainConfig:
    options = dict(data=data, runs_dir=root / "runs", preset="tiny", perceptual_weight=0.0, progress=False,
                   sample_every=1000, checkpoint_every=1000)
    options.update(overrides)
    return TrainConfig(**options)


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run40(train_data, tmp_path_factory) -> Path:
    """One 40-step run (samples and checkpoints every 20 steps), shared by several tests."""
    root = tmp_path_factory.mktemp("tiny-run")
    path = train(tiny(train_data, root, steps=40, sample_every=20, checkpoint_every=20), log=None)
    return path.parent


# ---------------------------------------------------------------------------------------
# One real run


def test_losses_fall(run40):
    log = read_log(run40)
    assert [r["step"] for r in log] == list(range(1, 41))
    l1 = [r["g_l1"] for r in log]
    cat = [r["d_category"] for r in log]
    means = [np.mean(l1[i:i + 10]) for i in range(0, 40, 10)]
    assert all(b < a for a, b in zip(means, means[1:])), means  # L1 falls every 10 steps
    assert means[-1] < 0.95 * means[0], means
    assert np.mean(cat[-5:]) < 0.9 * np.mean(cat[:5]), cat
    for key in ("epoch", "d_loss", "g_loss", "g_gan", "g_const", "g_category", "d_real", "d_fake", "lr",
                "images_per_s"):
        assert key in log[0]
    assert all(np.isfinite(r["g_loss"]) for r in log)


def test_run_folder_samples_and_latest(run40):
    runs = run40.parent
    assert (runs / "latest").is_symlink() and read_latest(runs).resolve() == run40.resolve()
    assert sorted(p.name for p in (run40 / "samples").iterdir()) == ["step-000020.png", "step-000040.png"]
    img = Image.open(run40 / "samples" / "step-000040.png")
    assert img.mode == "L"
    arr = np.asarray(img)
    assert arr.shape[1] >= 64 * 3 and arr.shape[0] >= 3 * 64  # 3 rows per block, several glyphs
    assert not [p for p in run40.iterdir() if p.name.startswith(".") and p.name != ".lock"]  # no temp files


def test_checkpoint_contents(run40, train_data):
    path = run40 / "checkpoint.pt"
    raw = torch.load(path, weights_only=True, map_location="cpu")  # no pickle code needed
    assert raw["format"] == "fontgen-checkpoint" and raw["version"] == 1
    train_pairs = int((np.load(train_data / "pair_split.npy") == 0).sum())
    assert raw["step"] == 40 and raw["epoch"] == 40 // (train_pairs // 4)
    config = ModelConfig.from_dict(raw["model_config"])
    assert (config.image_size, config.ngf, config.ndf) == (64, 8, 8)
    for key in ("generator", "discriminator", "optimizer_g", "optimizer_d"):
        assert raw[key]
    assert raw["optimizer_g"]["param_groups"][0]["betas"] == (0.5, 0.999)
    assert raw["optimizer_g"]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    rng = raw["rng"]
    assert rng["torch_cpu"].dtype == torch.uint8 and rng["augment"].dtype == torch.uint8
    assert rng["numpy"].dtype == torch.uint8 and rng["python"].dtype == torch.uint8
    assert [s["id"] for s in raw["styles"]] == list(STYLE_IDS)
    assert {"name", "path", "face", "family", "sha256", "geometry"} <= set(raw["styles"][0])
    assert raw["source"]["geometry"]["image_size"] == 64
    assert raw["image_size"] == 64 and raw["data_image_size"] == 64
    assert Path(raw["dataset"]) == train_data.resolve()
    assert raw["train_config"]["batch_size"] == 4 and raw["train_config"]["seed"] == 0

    G, cfg, meta = load_generator(path, "cpu")
    assert not G.training and cfg == config
    assert meta["step"] == 40 and [s["id"] for s in meta["styles"]] == list(STYLE_IDS)
    with torch.no_grad():
        out = G(torch.zeros(2, 1, 64, 64), torch.tensor([1, 12]))
    assert out.shape == (2, 1, 64, 64)


def test_resolve_checkpoint(run40, tmp_path):
    runs = run40.parent
    workdir = runs.parent
    assert resolve_checkpoint(workdir=workdir).resolve() == (run40 / "checkpoint.pt").resolve()
    assert resolve_checkpoint(run_dir=run40) == run40 / "checkpoint.pt"
    assert resolve_checkpoint(checkpoint=run40 / "checkpoint.pt", workdir=workdir) == run40 / "checkpoint.pt"
    with pytest.raises(FontgenError, match="train first"):
        resolve_checkpoint(workdir=tmp_path)
    with pytest.raises(FontgenError, match="train first"):
        resolve_checkpoint(run_dir=tmp_path)
    with pytest.raises(FontgenError, match="does not exist"):
        resolve_checkpoint(checkpoint=tmp_path / "nope.pt")
    # platforms without symlinks: runs/latest is a text file naming the run
    (tmp_path / "runs").mkdir()
    shutil.copytree(run40, tmp_path / "runs" / "r1", ignore=shutil.ignore_patterns("samples"))
    (tmp_path / "runs" / "latest").write_text("r1\n")
    assert resolve_checkpoint(workdir=tmp_path).resolve() == (tmp_path / "runs" / "r1" / "checkpoint.pt").resolve()
    update_latest(tmp_path / "runs", tmp_path / "runs" / "r1")  # replaces the file with a symlink
    assert (tmp_path / "runs" / "latest").is_symlink()


# ---------------------------------------------------------------------------------------
# Checkpoint files


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model_config": {}, "generator": {"w": torch.ones(3)}, "step": 1})
    before = path.read_bytes()

    def dies(obj, fh, *a, **k):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # killed mid-write

    monkeypatch.setattr(torch, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"model_config": {}, "generator": {"w": torch.zeros(3)}, "step": 2})
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    with pytest.raises(TypeError, match="only tensors"):
        save_checkpoint(path, {"model_config": {}, "generator": {}, "step": 3, "oops": object()})


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(FontgenError, match="train first"):
        load_checkpoint(tmp_path / "missing.pt")
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"model_config": {}, "generator": {"w": torch.ones(1000)}, "step": 1})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(FontgenError, match="not a readable fontgen checkpoint"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(FontgenError, match="not a readable fontgen checkpoint"):
        load_checkpoint(garbage)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}}, other)
    with pytest.raises(FontgenError, match="not a fontgen checkpoint"):
        load_checkpoint(other)
    future = tmp_path / "future.pt"
    torch.save({"format": "fontgen-checkpoint", "version": 99, "model_config": {}, "generator": {}, "step": 0}, future)
    with pytest.raises(FontgenError, match="version 99"):
        load_checkpoint(future)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "fontgen-checkpoint", "version": 1, "x": Path("/")}, evil)  # needs pickle code
    with pytest.raises(FontgenError, match="not a readable"):
        load_checkpoint(evil)


# ---------------------------------------------------------------------------------------
# Resume, refusal, init-from


def _state_tensors(path: Path) -> dict:
    raw = load_checkpoint(path)
    out = {f"G.{k}": v for k, v in raw["generator"].items()}
    out.update({f"D.{k}": v for k, v in raw["discriminator"].items()})
    for name in ("optimizer_g", "optimizer_d"):
        for pid, st in raw[name]["state"].items():
            out.update({f"{name}.{pid}.{k}": v for k, v in st.items()})
    return out


def test_resume_after_interruption_is_exact(train_data, tmp_path, monkeypatch, interrupt_training):
    """2N steps in one go == N steps, a crash, and a resume (dropout, augmentation and data order included)."""
    torch.use_deterministic_algorithms(True)
    try:
        common = dict(steps=16, augment=True, seed=3)
        straight = train(tiny(train_data, tmp_path, run=tmp_path / "straight", **common), log=None)

        interrupt_training(11)
        with pytest.raises(KeyboardInterrupt):
            train(tiny(train_data, tmp_path, run=tmp_path / "crashed", checkpoint_every=8, **common), log=None)
        monkeypatch.undo()
        assert load_checkpoint(tmp_path / "crashed" / "checkpoint.pt")["step"] == 8
        assert len(read_log(tmp_path / "crashed")) == 11
        resumed = train(tiny(train_data, tmp_path, run=tmp_path / "crashed", resume=True), log=None)
    finally:
        torch.use_deterministic_algorithms(False)

    a, b = _state_tensors(straight), _state_tensors(resumed)
    assert a.keys() == b.keys() and len(a) > 50
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert load_checkpoint(resumed)["step"] == 16
    log_a, log_b = read_log(straight.parent), read_log(resumed.parent)
    assert [r["step"] for r in log_b] == list(range(1, 17))  # the lost steps 9-11 were dropped, then retrained
    drop = ("images_per_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in log_a] == \
           [{k: v for k, v in r.items() if k not in drop} for r in log_b]


def test_different_model_config_is_refused(run40, train_data, tmp_path):
    before = (run40 / "checkpoint.pt").read_bytes()
    with pytest.raises(FontgenError, match=r"different model config: ngf 8 in the checkpoint, 16 now"):
        train(tiny(train_data, tmp_path, run=run40, resume=True, ngf=16, steps=50), log=None)
    with pytest.raises(FontgenError,
                       match=r"embedding_num 40 in the checkpoint, 50 now; image_size 64 in the checkpoint, 128 now"):
        train(tiny(train_data, tmp_path, init_from=run40 / "checkpoint.pt", image_size=128, embedding_num=50),
              log=None)
    assert (run40 / "checkpoint.pt").read_bytes() == before
    with pytest.raises(FontgenError, match="already holds a checkpoint"):
        train(tiny(train_data, tmp_path, run=run40, steps=50), log=None)


def test_init_from_with_frozen_encoder(run40, train_data, tmp_path):
    base = load_checkpoint(run40 / "checkpoint.pt")
    path = train(tiny(train_data, tmp_path, init_from=run40 / "checkpoint.pt", freeze_encoder=True, steps=3),
                 log=None)
    new = load_checkpoint(path)
    assert new["step"] == 3 and new["model_config"] == base["model_config"]
    changed = {k for k, v in new["generator"].items() if not torch.equal(v, base["generator"][k])}
    assert changed and not any(k.startswith("down.") for k in changed)
    assert any(k.startswith("up.") for k in changed) and "embedding.weight" in changed


def test_resume_on_another_dataset_is_refused(run40, train_data, tmp_path):
    other = tmp_path / "other-data"
    shutil.copytree(train_data, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["styles"][0]["sha256"] = "f" * 64  # another font file behind style 1
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FontgenError, match="style table differs.*--init-from"):
        train(tiny(other, tmp_path, run=run40, resume=True, steps=50), log=None)


def test_schedule_warmup_and_options_run(train_data, tmp_path):
    trainer = Trainer(tiny(train_data, tmp_path, lr=2e-4, lr_schedule=2, warmup_steps=10), log=None)
    trainer.loss_weights = losses.LossWeights()
    trainer.steps_per_epoch, trainer.cfg.lr_decay_steps = 10, 0
    assert [trainer.lr_at(e * 10) for e in (0, 1, 2, 4, 100)] == [2e-4, 2e-4, 1e-4, 5e-5, 2e-6]
    # linear decay to 0 over the last 50 of 100 steps
    trainer.cfg.lr_schedule, trainer.cfg.lr_decay_steps, trainer.cfg.steps = 0, 50, 100
    assert [trainer.lr_at(s) for s in (0, 50, 75, 99)] == pytest.approx([2e-4, 2e-4, 1e-4, 4e-6])
    assert (trainer.weights_at(0).l1, trainer.weights_at(5).l1, trainer.weights_at(10).l1) == (0, 50, 100)
    assert (trainer.weights_at(5).const, trainer.weights_at(5).gan) == (2.5, 1.0)
    path = train(tiny(train_data, tmp_path, steps=3, d_steps=2, grad_clip=1.0, warmup_steps=2, lr_schedule=1,
                      const_target="real", augment=True, self_attention=True, spectral_norm=True, norm="batch"),
                 log=None)
    log = read_log(path.parent)
    assert log[0]["g_l1"] == 0 and log[2]["g_l1"] > 0  # warm-up ramps L1 in from 0
    state = load_checkpoint(path)
    assert state["model_config"]["spectral_norm"] is True
    # d-steps 2: D's optimizer stepped twice per G step
    d_steps = {v["step"].item() for v in state["optimizer_d"]["state"].values()}
    g_steps = {v["step"].item() for v in state["optimizer_g"]["state"].values()}
    assert d_steps == {6.0} and g_steps == {3.0}


def test_grad_clip_and_const_target_take_effect(train_data, tmp_path, monkeypatch):
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, max_norm, *a, **k: (clipped.append(max_norm), real_clip(params, max_norm))[1])
    encoded = []
    from fontgen.model import Generator

    real_encode = Generator.encode
    monkeypatch.setattr(Generator, "encode", lambda self, x: (encoded.append(x.detach()), real_encode(self, x))[1])
    trainer = Trainer(tiny(train_data, tmp_path, run=tmp_path / "opts", steps=1, grad_clip=0.5, const_target="real"),
                      log=None)
    trainer._setup()
    real_a, real_b, labels = trainer.feed.to_device(*trainer.feed.load_rows(trainer.feed.batch_rows(0)))
    trainer.train_step(0, real_a, real_b, labels)
    trainer._lock.release()
    assert clipped == [0.5, 0.5]  # D and G
    assert len(encoded) == 1 and torch.equal(encoded[0], real_b)  # constancy against encoder(target)


# ---------------------------------------------------------------------------------------
# Failure paths


def test_missing_vgg_weights_stop_before_training(train_data, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    config = tiny(train_data, tmp_path, perceptual_weight=0.02, steps=5)
    with pytest.raises(FontgenError, match=r"--vgg-weights PATH, or --perceptual-weight 0"):
        train(config, log=None)
    assert not (tmp_path / "runs").exists()  # nothing written: no run folder, no checkpoint


def test_perceptual_loss_with_weights_file(train_data, tmp_path):
    """--vgg-weights with a real (randomly initialised, never downloaded) VGG16 state dict."""
    weights = tmp_path / "vgg16-features.pt"
    torch.manual_seed(0)
    torch.save(losses.vgg16_features(pretrained=False).state_dict(), weights)
    path = train(tiny(train_data, tmp_path, perceptual_weight=0.02, vgg_weights=weights, steps=3,
                      perceptual_every=2), log=None)
    log = read_log(path.parent)
    assert log[0]["g_perceptual"] > 0 and log[1]["g_perceptual"] == 0 and log[2]["g_perceptual"] > 0


def test_nan_loss_stops_and_keeps_last_good_checkpoint(train_data, tmp_path, monkeypatch):
    real_loss = losses.generator_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        loss, parts = real_loss(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 8:
            loss = loss * float("nan")
            parts = {**parts, "l1": parts["l1"] * float("nan")}
        return loss, parts

    monkeypatch.setattr(losses, "generator_loss", poisoned)
    run = tmp_path / "nan-run"
    with pytest.raises(FontgenError, match=r"diverged at step 8: .*g_loss=nan.*last good checkpoint .* \(step 5\)"):
        train(tiny(train_data, tmp_path, run=run, steps=20, checkpoint_every=5), log=None)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5
    assert [r["step"] for r in read_log(run)] == list(range(1, 8))


# ---------------------------------------------------------------------------------------
# Data path


def test_batches_shard_and_resize_on_device(train_data, tmp_path):
    trainer = Trainer(tiny(train_data, tmp_path, image_size=128, augment=True, steps=1), log=None)
    trainer._setup()
    rows = trainer.feed.batch_rows(5)
    assert len(rows) == 4 and list(rows) == sorted(rows)
    epoch0 = np.concatenate([trainer.feed.batch_rows(s) for s in range(trainer.steps_per_epoch)])
    assert len(set(epoch0.tolist())) == len(epoch0)  # no pair twice within an epoch
    assert not np.array_equal(trainer.feed.epoch_order(0), trainer.feed.epoch_order(1))  # reshuffled per epoch
    a, b, labels = trainer.feed.to_device(*trainer.feed.load_rows(rows), augment=True)
    assert a.shape == b.shape == (4, 1, 128, 128) and a.dtype == torch.float32
    assert a.min() >= -1 - 1e-5 and a.max() <= 1 + 1e-5 and set(labels.tolist()) <= set(STYLE_IDS)
    # two processes: disjoint halves of the same global batch
    feed = trainer.feed
    feed.world, feed.global_batch = 2, 8
    feed._order_epoch = None
    shards = [set(feed.batch_rows(3).tolist()) for feed.rank in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 4 and not shards[0] & shards[1]


def test_sample_grid_layout():
    a = -torch.ones(10, 1, 64, 64)
    grid = sample_grid(a, torch.zeros_like(a), torch.ones_like(a), per_row=8)
    assert grid.dtype == np.uint8 and grid.shape[1] == 8 * 64 + 7 * 2
    assert grid[0, 0] == 0 and grid[64 + 2, 0] == 128 and grid[2 * 66, 0] == 255


# ---------------------------------------------------------------------------------------
# Distributed: 2 CPU processes (gloo) == 1 process with the same global batch


def _ddp_worker(rank: int, world: int, data: str, out: str, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    config = tiny(Path(data), Path(out), run=Path(out) / f"run-{world}", steps=3, batch_size=4 // world,
                  dropout=0.0, norm="instance", bf16=False)  # fp32 on any CPU: the two sums agree to float precision
    trainer = Trainer(config, log=None)
    trainer.run()
    if rank == 0:  # the last step's gradients and the weights after three steps
        grads = {f"G.{n}": p.grad for n, p in trainer.G_raw.named_parameters()}
        grads.update({f"D.{n}": p.grad for n, p in trainer.D_raw.named_parameters()})
        grads.update({f"weight G.{n}": p.detach() for n, p in trainer.G_raw.named_parameters()})
        grads.update({f"weight D.{n}": p.detach() for n, p in trainer.D_raw.named_parameters()})
        torch.save(grads, Path(out) / f"grads-{world}.pt")


def test_ddp_two_processes_match_one(train_data, tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, str(train_data), str(tmp_path), port), nprocs=2, join=True)
    assert "WORLD_SIZE" not in os.environ
    try:
        _ddp_worker(0, 1, str(train_data), str(tmp_path), 0)
    finally:
        os.environ.pop("WORLD_SIZE", None)
    two, one = torch.load(tmp_path / "grads-2.pt"), torch.load(tmp_path / "grads-1.pt")
    assert two.keys() == one.keys()
    for key in one:
        # weights: Adam turns float noise in a near-zero gradient (a bias before instance norm) into a
        # full lr-sized step, so after 3 steps they agree within 3 * 2 * lr, not to float precision.
        # Gradients: summed in another order, they differ by float noise that grows with the tensor's
        # largest values (up to 2e-4 of them on an AMD EPYC, where the kernels block the sums otherwise)
        atol = 3 * 2 * 2e-4 if key.startswith("weight") else 3e-5 + 1e-3 * float(one[key].abs().max())
        torch.testing.assert_close(two[key], one[key], atol=atol, rtol=1e-3, msg=key)
    assert (tmp_path / "run-2" / "checkpoint.pt").is_file()
    assert load_checkpoint(tmp_path / "run-2" / "checkpoint.pt")["world_size"] == 2
    said = []  # one process going on with a two-process run says what that means
    train(tiny(train_data, tmp_path, run=tmp_path / "run-2", resume=True, steps=4), log=said.append)
    assert any("written by 2 processes" in line for line in said)


# ---------------------------------------------------------------------------------------
# Command line


def test_cli_train_and_resume(train_data, tmp_path):
    from fontgen.cli import cli

    work = tmp_path / "work"
    runner = CliRunner()
    args = ["--workdir", str(work), "train", "--data", str(train_data), "--preset", "tiny", "--perceptual-weight",
            "0", "--sample-every", "2"]
    result = runner.invoke(cli, args + ["--steps", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "preset tiny" in result.output
    run = read_latest(work / "runs")
    assert (work / "runs" / "latest").is_symlink()
    assert (run / "checkpoint.pt").is_file() and len(read_log(run)) == 3
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-000002.png", "step-000003.png"]
    result = runner.invoke(cli, args + ["--resume", "--steps", "5"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5 and len(read_log(run)) == 5

    help_text = runner.invoke(cli, ["train", "--help"]).output
    for option in ("--l1-weight", "--const-weight", "--perceptual-weight", "--category-weight", "--vgg-weights",
                   "--resume", "--init-from", "--freeze-encoder", "--lr-schedule", "--preset", "--d-steps"):
        assert option in help_text


def test_threads_option_and_slow_step_warning(train_data, tmp_path, monkeypatch):
    import fontgen.train as train_module
    from fontgen.model import default_threads

    assert default_threads() == max(1, len(os.sched_getaffinity(0)) - 1)
    said = []
    clock = [0.0]  # the loop's clock: 10 ms a step, then 0.5 s a step once another process took the CPU
    real_step = Trainer.train_step

    def step_on_the_clock(self, step, *args):
        clock[0] += 0.5 if step >= 12 else 0.01
        return real_step(self, step, *args)

    monkeypatch.setattr(Trainer, "train_step", step_on_the_clock)
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: clock[0])
    torch.set_num_threads(1)
    train(tiny(train_data, tmp_path, steps=30, threads=2), log=said.append)
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    monkeypatch.undo()
    assert any("on cpu (2 threads)" in line for line in said)
    warnings = [line for line in said if "slower than earlier in this run" in line]
    assert len(warnings) == 1 and "--threads 1" in warnings[0]


def test_cli_threads_option(train_data, tmp_path):
    from fontgen.cli import cli

    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "train", "--data", str(train_data), "--preset",
                                      "tiny", "--steps", "2", "--threads", "1", "--perceptual-weight", "0"])
    assert result.exit_code == 0 and "(1 threads)" in result.output, result.output
    assert "--threads" in CliRunner().invoke(cli, ["train", "--help"]).output


def test_cpu_bf16_follows_the_hardware(train_data, tmp_path, monkeypatch):
    """bf16 + channels_last on a CPU with bf16 hardware (faster there), fp32 elsewhere; --no-bf16 wins."""
    import fontgen.train as train_module
    from fontgen.cli import cli

    for native, option, want in ((True, None, True), (False, None, False), (True, False, False)):
        monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda native=native: native)
        trainer = Trainer(tiny(train_data, tmp_path / f"{native}-{option}", run=tmp_path / f"run-{native}-{option}",
                               steps=3, device="cpu", bf16=option), log=None)
        trainer.run()
        assert trainer.bf16 is want and trainer.channels_last is want
        log = read_log(tmp_path / f"run-{native}-{option}")
        assert len(log) == 3 and all(math.isfinite(r["g_loss"]) for r in log)
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "train", "--data", str(train_data), "--preset", "tiny",
                                      "--steps", "2", "--device", "cpu", "--perceptual-weight", "0", "--no-bf16"])
    assert result.exit_code == 0 and ", bf16," not in result.output, result.output  # native is still True here


def test_sample_grid_shows_enough_glyphs(run40):
    arr = np.asarray(Image.open(run40 / "samples" / "step-000040.png"))
    blocks = (arr.shape[0] + 3 * 2) // (3 * 64 + 5 * 2)  # 3 rows of 64 px per block of 8 glyphs
    assert blocks >= 3  # 3 styles share 32 glyphs (was 4 each: 12 glyphs, 2 blocks)


def test_g_is_scored_by_the_freshly_updated_d(train_data, tmp_path):
    """Review fix 6 at trainer level: the G step's adversarial term sees D after this step's update."""
    trainer = Trainer(tiny(train_data, tmp_path, run=tmp_path / "fix6", steps=1), log=None)
    trainer._setup()
    seen = []  # D's weights at each of its forward passes
    hook = trainer.D_raw.register_forward_pre_hook(
        lambda module, args: seen.append([p.detach().clone() for p in module.parameters()]))
    before = [p.detach().clone() for p in trainer.D_raw.parameters()]
    batch = trainer.feed.to_device(*trainer.feed.load_rows(trainer.feed.batch_rows(0)))
    trainer.train_step(0, *batch)
    hook.remove()
    after = list(trainer.D_raw.parameters())
    assert len(seen) == 2  # the D step (real and fake in one pass) and the G step
    assert all(torch.equal(x, y) for x, y in zip(seen[0], before))
    assert all(torch.equal(x, y) for x, y in zip(seen[-1], after))  # G saw the updated D ...
    assert not all(torch.equal(x, y) for x, y in zip(seen[-1], before))  # ... not the one before the update
    if trainer._lock is not None:
        trainer._lock.release()


def test_deterministic_option(train_data, tmp_path):
    try:
        a = train(tiny(train_data, tmp_path, run=tmp_path / "a", steps=3, deterministic=True), log=None)
        assert torch.are_deterministic_algorithms_enabled()
        b = train(tiny(train_data, tmp_path, run=tmp_path / "b", steps=3, deterministic=True), log=None)
    finally:
        torch.use_deterministic_algorithms(False)
    sa, sb = load_checkpoint(a)["generator"], load_checkpoint(b)["generator"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_logging_one_step_late_changes_nothing_and_never_saves_a_diverged_step(train_data, tmp_path, monkeypatch):
    """The CUDA path logs each step while the next one runs; forced on here, the log and the weights are those
    of the immediate path, and a non-finite loss still stops the run before a checkpoint holds it."""
    plain = train(tiny(train_data, tmp_path, run=tmp_path / "plain", steps=6, checkpoint_every=3), log=None)
    real_setup = Trainer._setup

    def late_setup(self):
        real_setup(self)
        self.log_late = True

    monkeypatch.setattr(Trainer, "_setup", late_setup)
    late = train(tiny(train_data, tmp_path, run=tmp_path / "late", steps=6, checkpoint_every=3), log=None)
    strip = lambda run: [{k: v for k, v in r.items() if k != "images_per_s"} for r in read_log(run)]  # noqa: E731
    assert strip(plain.parent) == strip(late.parent) and len(strip(late.parent)) == 6
    assert all(torch.equal(x, y) for x, y in zip(load_checkpoint(plain)["generator"].values(),
                                                 load_checkpoint(late)["generator"].values()))
    real_step = Trainer.train_step

    def nan_at_3(self, step, *args):
        names, values = real_step(self, step, *args)
        return names, values * float("nan") if step == 2 else values  # step 3's losses, saved at step 3

    monkeypatch.setattr(Trainer, "train_step", nan_at_3)
    with pytest.raises(FontgenError, match="training diverged at step 3"):
        train(tiny(train_data, tmp_path, run=tmp_path / "nan", steps=6, checkpoint_every=3), log=None)
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()


def test_stroke_weight_trains_and_is_the_cpu_default(train_data, tmp_path):
    from fontgen.train import PRESETS

    assert PRESETS["cpu"]["stroke_weight"] > 0 and "stroke_weight" not in PRESETS["full"]
    path = train(tiny(train_data, tmp_path, steps=3, stroke_weight=4.0), log=None)
    log = read_log(path.parent)
    assert all(math.isfinite(r["g_l1"]) and r["g_l1"] > 0 for r in log)
    assert load_checkpoint(path)["train_config"]["stroke_weight"] == 4.0
    plain = train(tiny(train_data, tmp_path, steps=3, run=tmp_path / "plain"), log=None)
    assert load_checkpoint(plain)["train_config"]["stroke_weight"] == 0.0  # tiny preset: plain L1


def test_ema_is_the_running_average_generate_draws_with(train_data, tmp_path):
    """One step with --ema: the average is 0.1 * the initial G + 0.9 * the trained G (the decay starts
    low), the checkpoint keeps both, and load_generator draws with the average."""
    from fontgen.checkpoint import load_generator
    from fontgen.model import ModelConfig, build_models

    path = train(tiny(train_data, tmp_path, steps=1, ema=0.999), log=None)
    state = load_checkpoint(path)
    torch.manual_seed(0)  # the run's seed: the weights it started from
    initial, _ = build_models(ModelConfig.from_dict(state["model_config"]))
    start, trained, average = initial.state_dict(), state["generator"], state["generator_ema"]
    moved = 0
    for key, value in average.items():
        if value.is_floating_point():
            assert torch.allclose(value, 0.1 * start[key] + 0.9 * trained[key], atol=1e-6), key
            moved += not torch.equal(value, trained[key])
    assert moved > 10
    generator, _, _ = load_generator(path)
    assert torch.equal(generator.state_dict()["down.0.weight"], average["down.0.weight"])
    plain = train(tiny(train_data, tmp_path, run=tmp_path / "plain", steps=1), log=None)
    assert "generator_ema" not in load_checkpoint(plain)


def test_the_cpu_preset_decays_the_lr_over_the_second_half_of_any_run(train_data, tmp_path):
    path = train(tiny(train_data, tmp_path, preset="cpu", steps=4), log=None)
    state = load_checkpoint(path)
    config, model = state["train_config"], state["model_config"]
    assert (config["lr"], config["lr_decay_steps"], config["stroke_weight"], config["gap_weight"], config["iou_weight"]) == \
        (1e-3, 2, 4.0, 16.0, 100.0)
    assert config["time_limit"] == 0  # --steps given: all of them, however long they take
    assert all(r["g_iou"] > 0 for r in read_log(path.parent))
    assert (model["ngf"], model["ndf"], model["dropout"], model["style_film"]) == (16, 8, 0.0, True)
    assert [r["lr"] for r in read_log(path.parent)] == pytest.approx([1e-3, 1e-3, 1e-3, 5e-4])
    plain = train(tiny(train_data, tmp_path, preset="cpu", steps=4, lr_decay_steps=0, run=tmp_path / "flat"), log=None)
    assert [r["lr"] for r in read_log(plain.parent)] == pytest.approx([1e-3] * 4)


def test_the_cpu_preset_stops_a_small_dataset_after_35_passes(train_data, tmp_path, interrupt_training):
    lines = []
    interrupt_training(0)  # the settings are said before the first step
    with pytest.raises(KeyboardInterrupt):
        train(tiny(train_data, tmp_path, preset="cpu"), log=lines.append)
    assert any("batch 16, 5000 steps (at most 15 minutes) (" in line for line in lines), lines  # ~100 pairs: the floor

    class Pairs:  # the preset needs only the count of training pairs
        def __init__(self, count):
            self.count = count

        def pair_indices(self, split):
            assert split == "train"
            return range(self.count)

    steps, batch16 = PRESETS["cpu"]["steps"], TrainConfig(batch_size=16)
    assert steps(batch16, Pairs(8999)) == 12000  # fonts_sample (the demo): 21 passes, the full run
    assert steps(batch16, Pairs(2304)) == 5040  # one font of GB2312 level 1, as `fontgen complete` trains it
    assert steps(batch16, Pairs(4000)) == 8750


def test_style_film_follows_the_preset_the_option_and_the_checkpoint_it_starts_from(train_data, tmp_path):
    from fontgen.cli import cli

    runs = tmp_path / "runs"
    plain = train(tiny(train_data, tmp_path, steps=2, run=runs / "plain"), log=None)
    assert load_checkpoint(plain)["model_config"]["style_film"] is False  # tiny, like full: zi2zi's model
    # a run started from a checkpoint takes its model, whatever the cpu preset says
    fine = train(tiny(train_data, tmp_path, preset="cpu", steps=2, init_from=plain, run=runs / "fine"), log=None)
    assert load_checkpoint(fine)["model_config"]["style_film"] is False
    result = CliRunner().invoke(cli, ["--workdir", str(tmp_path), "train", "--data", str(train_data), "--preset",
                                      "tiny", "--steps", "2", "--perceptual-weight", "0", "--style-film",
                                      "--run", str(runs / "film")])
    assert result.exit_code == 0, result.output
    state = load_checkpoint(runs / "film" / "checkpoint.pt")
    assert state["model_config"]["style_film"] is True and any(k.startswith("film.") for k in state["generator"])


def test_time_limit_ends_the_run_in_time_with_its_lr_decay(train_data, tmp_path):
    lines = []
    limit_s = 3.0
    path = train(tiny(train_data, tmp_path, steps=100000, lr_decay_steps=50000, time_limit=limit_s / 60), log=lines.append)
    state = load_checkpoint(path)
    steps = state["step"]
    assert 20 < steps < 100000 and state["train_config"]["steps"] == steps
    assert state["train_seconds"] < 1.5 * limit_s + 1  # a step, a save and a busy machine's lag past it
    assert any("of 100000 steps; the run will end there" in line for line in lines), lines
    lrs = [r["lr"] for r in read_log(path.parent)]
    assert len(lrs) == steps and lrs[0] == pytest.approx(2e-4)
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # no jump up where the end moved
    decay = state["train_config"]["lr_decay_steps"]  # the decay reached its new end, however fast the steps ran
    assert 2 <= decay < steps and lrs[-1] == pytest.approx(lrs[0] / decay) and lrs[steps // 2 - 1] == lrs[0]
    lines.clear()
    train(tiny(train_data, tmp_path, resume=True, run=path.parent), log=lines.append)
    assert load_checkpoint(path)["step"] == steps and any("nothing to do" in line for line in lines)
    # more --steps on resume: the steps asked for, with no inherited limit
    train(tiny(train_data, tmp_path, resume=True, run=path.parent, steps=steps + 5), log=None)
    state = load_checkpoint(path)
    assert state["step"] == steps + 5 and state["train_config"]["time_limit"] == 0


def test_the_time_limit_moves_the_end_and_the_lr_decay_without_a_jump(train_data, tmp_path):
    import collections
    import time
    from types import SimpleNamespace

    def trainer_at(steps, decay):
        trainer = Trainer(tiny(train_data, tmp_path, steps=steps, lr=1e-3, lr_schedule=0, lr_decay_steps=decay,
                               time_limit=15.0), log=None)
        trainer.steps_per_epoch, trainer.bar = 100, SimpleNamespace(total=steps)
        trainer._plan_cap, trainer._said_cut = (steps, decay), False
        trainer._speed_marks = collections.deque([(0, time.monotonic() - 1)])
        return trainer

    # while the lr is flat: the decay keeps its share of the run, the lr now is untouched
    trainer = trainer_at(12000, 6000)
    trainer._replan(3000, 8000)
    assert (trainer.cfg.steps, trainer.cfg.lr_decay_steps, trainer.bar.total) == (8000, 4000, 8000)
    assert trainer.lr_at(3000) == trainer.lr_at(3999) == 1e-3 and trainer.lr_at(7999) < 1e-6
    trainer._replan(3500, 11000)  # the slow spell passed: the end moves back out (never past the run's)
    assert (trainer.cfg.steps, trainer.cfg.lr_decay_steps) == (11000, 5500)
    assert trainer.lr_at(5499) == 1e-3
    # while decaying: only sooner, the lr going on from where it is, down to 0 at the new end
    trainer = trainer_at(12000, 6000)
    before = trainer.lr_at(8000)
    trainer._replan(8000, 10000)
    assert trainer.lr_at(8000) == pytest.approx(before, rel=1e-3) and trainer.lr_at(9999) < 1e-6
    trainer._replan(8100, 11000)
    assert trainer.cfg.steps == 10000  # a later end would lift the lr
    # a plan that ends the flat part now: continuous too
    trainer = trainer_at(12000, 6000)
    trainer._replan(5000, 9000)
    assert (trainer.cfg.steps, trainer.cfg.lr_decay_steps) == (9000, 4000) and trainer.lr_at(5000) == 1e-3
    # the end is now
    trainer = trainer_at(12000, 6000)
    trainer._replan(5000, 5000)
    assert trainer.cfg.steps == 5000 and trainer.cfg.lr_decay_steps >= 1
    # a short decay asked for stays on however far the end moves in
    trainer = trainer_at(100000, 100)
    trainer._replan(10, 300)
    assert (trainer.cfg.steps, trainer.cfg.lr_decay_steps) == (300, 2) and trainer.lr_at(299) == 0.5 * trainer.lr_at(298)
