"""`fontgen train`: paired glyph images -> a category-embedded Zi2Zi GAN checkpoint.

Data path. The dataset folder is memory-mapped once (fontgen.dataset.GlyphDataset). Each
step's batch is a sorted index array into the maps (numpy fancy indexing: one copy of
exactly the rows needed, no per-epoch reload, no pickle); uint8 pixels travel to the
device (pinned memory on CUDA, prefetched one batch ahead by a thread) and become floats
in [-1, 1] there, resized on the device when the model's size differs from the data's.

Data order. Epoch e's order is a permutation drawn from a generator seeded with
(seed, e), so it depends on nothing but the seed, the epoch and the dataset: a resumed
run sees the same batches, and with torchrun every rank draws the same order and takes
a disjoint shard of each global batch (DistributedSampler semantics).

Step. D is updated (`d_steps` times) on the detached fake, then G is updated against the
freshly updated D (DESIGN.md review fix 6), with D frozen during the G step.

Distributed. With WORLD_SIZE > 1 (torchrun) G and D are wrapped in
DistributedDataParallel; the D step passes real and fake pairs through the wrapped D as one
batch (two passes only with batch norm, whose statistics would mix them), the constancy
loss calls the raw generator's `encode`, and the G step evaluates the raw (frozen) D, so
DDP sees one forward per backward (with `--norm batch`, D's step has two).
Only rank 0 logs and writes.

Run folder (``--run``, default WORKDIR/runs/<timestamp>; runs/latest points to the newest
run that has a checkpoint):

    checkpoint.pt       see fontgen.checkpoint; every --checkpoint-every steps and at the end
    log.jsonl           one object per step: step, epoch, d_loss, g_loss, the loss parts
                        (d_gan, d_real, d_fake, d_category; g_gan, g_l1, g_const, g_category,
                        g_perceptual: weighted as they enter the loss, d_real/d_fake raw BCEs),
                        lr, images_per_s (all processes, data loading included)
    samples/step-N.png  source | generated | target rows for a fixed set of validation glyphs
    train_config.json   the resolved options and model config
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fontgen.checkpoint import (CHECKPOINT_NAME, load_checkpoint, read_latest, save_checkpoint,
                                update_latest)
from fontgen.dataset import GlyphDataset
from fontgen.errors import FontgenError
from fontgen.files import (LOCK_NAME, FolderLock, check_output_folder, clean_stale_temps, is_locked,
                           temp_path)
from fontgen.images import from_model, resize
from fontgen.model import ModelConfig, build_models, cpu_has_native_bf16, pick_device, set_threads

# The model fields a preset, an --init-from or a --resume checkpoint may supply.
MODEL_FIELDS = ("image_size", "ngf", "ndf", "norm", "self_attention", "spectral_norm", "embedding_num",
                "embedding_dim", "dropout", "style_relu", "style_film")
# Defaults of the options no preset sets (None in TrainConfig means "not given").
DEFAULTS = {"gan_weight": 1.0, "l1_weight": 100.0, "stroke_weight": 0.0, "gap_weight": 0.0, "iou_weight": 0.0, "const_weight": 5.0, "category_weight": 1.0,
            "const_target": "fake", "perceptual_every": 1, "d_steps": 1, "grad_clip": 0.0, "warmup_steps": 0,
            "lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "lr_schedule": 0, "lr_decay_steps": 0, "ema": 0.0,
            "augment": False, "freeze_encoder": False,
            "seed": 0, "compile": False, "sample_every": 500, "checkpoint_every": 1000, "checkpoint_minutes": 10.0,
            "time_limit": 0.0}
# About this machine, not the run: never taken from a checkpoint (None: chosen by the device).
MACHINE_FIELDS = ("device", "bf16", "channels_last", "compile", "threads", "deterministic")
# Every option a resumed run takes back from its checkpoint.
RESUME_FIELDS = MODEL_FIELDS + tuple(name for name in ("preset", "steps", "batch_size", "perceptual_weight",
                                                       "vgg_weights", *DEFAULTS) if name not in MACHINE_FIELDS)
# Options a resumed run may change (how long it runs, how often it saves, where a file is); the others
# decide what the run learns and must match the checkpoint.
CHANGEABLE_ON_RESUME = {"steps", "vgg_weights", "sample_every", "checkpoint_every", "checkpoint_minutes", "time_limit"}

PRESETS = {
    # smoke tests: seconds on a laptop CPU
    "tiny": {"image_size": 64, "ngf": 8, "ndf": 8, "batch_size": 4, "steps": 40, "perceptual_weight": 0.0},
    # about 15 minutes on two CPU cores (--threads 1; the demo stays under 20 minutes). Each choice
    # was measured at display size on fonts_sample's held-out glyphs (docs/benchmarks.md,
    # "Display-size quality ablation"; display IoU at 1,600 steps): stroke weight 4 (losses.pixel_l1)
    # 0.51 -> 0.56, halving the glyphs in broken pieces (69% -> 35%) at the price of more merged
    # strokes; lr 1e-3 falling linearly to 0 over the second half 0.564 -> 0.588; no dropout (a
    # short run cannot afford it) +0.013; ndf 8 the same quality with 21% shorter steps, spent on
    # more steps; the soft IoU term (losses.soft_iou_loss) 5-10 points fewer broken glyphs on two
    # seeds (its IoU gain is within the ~0.01 a seed moves a 1,600-step figure); no constancy term
    # (at 5,000 steps display IoU 0.646 without, 0.645 with: its second encoder pass is 12% of the
    # step), and with bf16 hardware bf16 + channels_last, together 83 -> 63 ms a step, spent on
    # 12,000 steps instead of 10,000. FiLM (--style-film: the style scales and shifts every decoder
    # level, not only the bottleneck) 0.644 -> 0.662 at 5,000 steps, broken glyphs 28% -> 21%, for 2%
    # of the step.
    # The perceptual loss is off: VGG16 to relu2_2 would be 85% of the FLOPs at this width (2.7
    # steps/s with it, ~9 without), and a machine without internet has no ImageNet VGG16 weights;
    # --perceptual-weight 0.02 --vgg-weights FILE turns it on.
    # A small dataset (one font of ~2,300 glyphs, what `fontgen complete` trains on) has learnt all it
    # will after ~35 passes: IPAmincho's held-out display IoU is 0.616 at 5,000 steps and 0.614 at
    # 12,000 (docs/benchmarks.md, round 5), so the run stops there, 8 minutes sooner.
    # Gap weight 16 (losses.narrow_gaps: the paper between close strokes weighs 17 in the L1): merged
    # glyphs 42% -> 33% on fonts_sample, 36% -> 24% on IPAmincho, for 0.002-0.005 of display IoU
    # (docs/benchmarks.md, round 11).
    # The same 12,000 steps took 14.7 to 21.2 minutes on this shared 2-core host on different days, so
    # the preset also stops within 15 minutes of training (--time-limit; not when --steps is given): on
    # a slow day the run is cut to the steps that fit and its lr decay moves with the new end.
    "cpu": {"image_size": 64, "ngf": 16, "ndf": 8, "dropout": 0.0, "batch_size": 16,
            "steps": lambda cfg, ds: min(12000, max(5000, CPU_PASSES * len(ds.pair_indices("train")) // cfg.batch_size)),
            "perceptual_weight": 0.0, "stroke_weight": 4.0, "gap_weight": 16.0, "iou_weight": 100.0, "const_weight": 0.0, "lr": 1e-3,
            "lr_decay_steps": lambda cfg, ds: cfg.steps // 2, "style_film": True, "time_limit": 15.0},
    # the zi2zi model: 256 px, ngf/ndf 64 (one GPU)
    "full": {"image_size": 256, "ngf": 64, "ndf": 64, "batch_size": 64, "steps": 50000, "perceptual_weight": 0.02},
}
CPU_PASSES = 35  # the cpu preset's passes over a small dataset (its steps, above)
LR_FLOOR = 2e-6
SAMPLE_STYLES = 8  # styles in the sample grid
SAMPLE_GLYPHS = 32  # glyphs in the sample grid, shared among its styles (at least 4 each)


@dataclass
class TrainConfig:
    """Every option of `fontgen train`. None means: from the preset / the checkpoint / the model default."""

    data: Path | None = None  # None: the resumed run's dataset, else default_data
    default_data: Path = Path("fontgen-work/data")
    runs_dir: Path = Path("fontgen-work/runs")  # default run folders and runs/latest
    run: Path | None = None  # default: runs_dir/<timestamp> (or runs/latest with resume)
    preset: str | None = None  # auto | tiny | cpu | full (None: auto, or the resumed run's)
    device: str | None = None  # auto | cpu | cuda (None: auto, or the resumed run's)
    steps: int | None = None  # total optimizer steps of the run
    batch_size: int | None = None  # per process
    image_size: int | None = None
    ngf: int | None = None
    ndf: int | None = None
    norm: str | None = None
    self_attention: bool | None = None
    style_film: bool | None = None
    spectral_norm: bool | None = None
    embedding_num: int | None = None
    embedding_dim: int | None = None
    dropout: float | None = None
    style_relu: bool | None = None  # None: False (the whole style embedding trains), or the checkpoint's
    resume: bool = False
    init_from: Path | None = None
    # Below, None means: the resumed run's value, else the preset's, else DEFAULTS.
    freeze_encoder: bool | None = None
    gan_weight: float | None = None
    l1_weight: float | None = None
    stroke_weight: float | None = None  # extra L1 weight on ink pixels (losses.pixel_l1)
    gap_weight: float | None = None  # extra L1 weight on narrow gaps between strokes (losses.pixel_l1)
    iou_weight: float | None = None  # soft IoU of each glyph's ink (losses.soft_iou_loss)
    const_weight: float | None = None
    perceptual_weight: float | None = None  # preset: 0.02 on the GPU preset, 0 on CPU presets
    category_weight: float | None = None
    vgg_weights: Path | None = None
    const_target: str | None = None  # fake | real
    perceptual_every: int | None = None
    d_steps: int | None = None
    grad_clip: float | None = None
    warmup_steps: int | None = None
    lr: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    lr_schedule: int | None = None  # halve the lr every N epochs (0: constant)
    lr_decay_steps: int | None = None  # the lr falls linearly to 0 over the run's last N steps (0: off)
    ema: float | None = None  # decay of the generator's weight average that generate draws with (0: off)
    augment: bool | None = None
    bf16: bool | None = None  # None: on CUDA, and on a CPU with bf16 hardware (AMX, AVX512-BF16)
    channels_last: bool | None = None  # None: on CUDA with batch norm (instance norm converts back per call), on CPU with bf16
    compile: bool | None = None
    sample_every: int | None = None
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = None  # also checkpoint when this much time passed since the last one
    time_limit: float | None = None  # minutes of training the run may take; fewer steps if needed (0: none)
    threads: int | None = None  # CPU threads for torch (None: all cores but one); about this machine
    deterministic: bool = False  # deterministic kernels, no cudnn autotuning (exact repeats, slower)
    seed: int | None = None
    progress: bool = True

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(config: TrainConfig, log=_stderr) -> Path:
    """Train (or resume) a run; returns the path of its final checkpoint."""
    return Trainer(config, log=log).run()


# ---------------------------------------------------------------------------------------
# Small helpers


def _json_tensor(value) -> torch.Tensor:
    return torch.tensor(list(json.dumps(value).encode("utf-8")), dtype=torch.uint8)


def _tensor_json(tensor: torch.Tensor):
    return json.loads(bytes(tensor.tolist()).decode("utf-8"))


def _numpy_state() -> list:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_numpy_state(state: list) -> None:
    name, keys, pos, has_gauss, cached = state
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _set_python_state(state: list) -> None:
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))


def _same_option(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return float(a) == float(b)
    return str(a) == str(b)


def model_config_diff(saved: dict, current: dict) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [f"{k} {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now" for k in keys
            if saved.get(k) != current.get(k)]


def sample_grid(real_a: torch.Tensor, fake_b: torch.Tensor, real_b: torch.Tensor, per_row: int = 8) -> np.ndarray:
    """Blocks of three rows (source | generated | target), `per_row` glyphs wide, 8-bit grey."""
    a, f, b = (from_model(t) for t in (real_a, fake_b, real_b))
    n, s = a.shape[0], a.shape[1]
    gap = max(2, s // 32)
    cols = min(per_row, n)
    blocks = math.ceil(n / cols)
    height = blocks * (3 * s + 2 * gap) + (blocks - 1) * 3 * gap
    width = cols * s + (cols - 1) * gap
    grid = np.full((height, width), 160, np.uint8)
    for i in range(n):
        block, col = divmod(i, cols)
        y0 = block * (3 * s + 5 * gap)
        x0 = col * (s + gap)
        for r, img in enumerate((a, f, b)):
            y = y0 + r * (s + gap)
            grid[y:y + s, x0:x0 + s] = img[i]
    return grid


def new_run_dir(runs_dir: Path) -> Path:
    """Make a new, empty run folder named by the time (exclusively: two runs never share one)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs_dir.mkdir(parents=True, exist_ok=True)
    run, n = runs_dir / stamp, 2
    while True:
        try:
            run.mkdir()
            return run
        except FileExistsError:
            run = runs_dir / f"{stamp}-{n}"
            n += 1


_RUN_NAME = re.compile(r"^\d{8}-\d{6}(-\d+)?$")
_RUN_FILES = {"log.jsonl", "train_config.json", "samples", LOCK_NAME}


def remove_abandoned_runs(runs_dir: Path, keep: Path) -> list[Path]:
    """Timestamp-named run folders that a dead process left without a checkpoint (nothing to resume)."""
    removed = []
    for run in sorted(Path(runs_dir).glob("*-*")):
        if run == keep or run.is_symlink() or not run.is_dir() or not _RUN_NAME.match(run.name):
            continue
        names = {p.name for p in run.iterdir()}
        if CHECKPOINT_NAME in names or not names <= _RUN_FILES or is_locked(run):
            continue
        shutil.rmtree(run, ignore_errors=True)
        removed.append(run)
    return removed


# ---------------------------------------------------------------------------------------


class BatchFeed:
    """The data side of training: which pairs each step sees (a seeded permutation per epoch,
    sharded by rank), reading them from the memory maps, and turning them into model input on
    the device (resized, augmented, in the chosen memory layout)."""

    def __init__(self, dataset: GlyphDataset, train_rows: np.ndarray, seed: int, global_batch: int,
                 steps_per_epoch: int, rank: int, world: int, device: torch.device, image_size: int,
                 channels_last: bool, augment_gen: torch.Generator):
        self.dataset, self.train_rows, self.seed = dataset, train_rows, seed
        self.global_batch, self.steps_per_epoch, self.rank, self.world = global_batch, steps_per_epoch, rank, world
        self.device, self.cuda = device, device.type == "cuda"
        self.image_size, self.channels_last, self.augment_gen = image_size, channels_last, augment_gen

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Training pair rows in epoch `epoch`'s order, at least one global batch long."""
        if getattr(self, "_order_epoch", None) != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            order = self.train_rows[rng.permutation(len(self.train_rows))]
            if len(order) < self.global_batch:
                order = np.resize(order, self.global_batch)
            self._order, self._order_epoch = order, epoch
        return self._order

    def batch_rows(self, step: int) -> np.ndarray:
        """This rank's (sorted) pair rows for a step: a disjoint shard of the global batch."""
        epoch, i = divmod(step, self.steps_per_epoch)
        chunk = self.epoch_order(epoch)[i * self.global_batch:(i + 1) * self.global_batch]
        return np.sort(chunk[self.rank::self.world])

    def load_rows(self, rows: np.ndarray, step: int | None = None):
        """Host side of a batch: uint8 [2N, S, S] (N sources, then N targets) and int64 labels [N].

        With several source fonts each pair's source glyph is one of them, drawn at random (the
        same for a step on every resume); without a step, the primary source.

        One fancy-indexed copy per memory map into one buffer, pinned on CUDA so the copy to
        the device is asynchronous.
        """
        ds = self.dataset
        n, size = len(rows), ds.image_size
        ab = np.empty((2 * n, size, size), np.uint8)
        char_rows = np.asarray(ds.pair_char[rows]).astype(np.int64)
        if ds.views > 1 and step is not None:
            char_rows += len(ds.codepoints) * np.random.default_rng([self.seed, step, self.rank]).integers(ds.views, size=n)
        np.take(ds.source, char_rows, axis=0, out=ab[:n], mode="clip")  # rows are valid
        np.take(ds.images, rows, axis=0, out=ab[n:], mode="clip")
        ab = torch.from_numpy(ab)
        labels = torch.from_numpy(np.asarray(ds.pair_style[rows]).astype(np.int64))
        if self.cuda:
            ab, labels = ab.pin_memory(), labels.pin_memory()
        return ab, labels

    def to_device(self, ab: torch.Tensor, labels: torch.Tensor, augment: bool = False):
        """uint8 [2N, S, S] -> (A, B) float [N, 1, s, s] in [-1, 1] on the device (resized, augmented), labels."""
        dev = self.device
        n = ab.shape[0] // 2
        x = ab.to(dev, non_blocking=True).unsqueeze(1)
        x = x.float().mul_(1 / 127.5).sub_(1)
        size = self.image_size
        if x.shape[-1] != size:
            x = resize(x, size)
        if augment:
            x = self._augment(x, n)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x[:n], x[n:], labels.to(dev, non_blocking=True)

    def _augment(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """Random scale (+-8%) and shift (+-4% of the size), the same for a pair's A and B."""
        g = self.augment_gen
        scale = 1 + (torch.rand(n, generator=g, device=g.device) * 2 - 1) * 0.08
        shift = (torch.rand(n, 2, generator=g, device=g.device) * 2 - 1) * 0.08
        theta = torch.zeros(n, 2, 3, device=g.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
        theta[:, :, 2] = shift
        theta = theta.repeat(2, 1, 1).to(x.device)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # sample (x - 1) so the zero padding of grid_sample becomes white (+1) after adding 1
        return F.grid_sample(x - 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 1

    def fixed_val_batch(self):
        """A few characters of up to SAMPLE_STYLES styles, the same every time (validation split if any)."""
        ds = self.dataset
        rows = ds.pair_indices("val")
        if len(rows) == 0:
            rows = self.train_rows
        styles = np.asarray(ds.pair_style)[rows]
        picked = []
        rng = np.random.default_rng(12345)
        shown = sorted(set(styles.tolist()))[:SAMPLE_STYLES]
        per_style = max(4, SAMPLE_GLYPHS // len(shown))
        for style_id in shown:
            mine = rows[styles == style_id]
            picked.extend(sorted(rng.choice(mine, size=min(per_style, len(mine)), replace=False).tolist()))
        return self.to_device(*self.load_rows(np.asarray(picked, dtype=np.int64)))


# ---------------------------------------------------------------------------------------


class Trainer:
    """One training run. `run()` does setup, the loop and the final checkpoint."""

    def __init__(self, config: TrainConfig, log=_stderr):
        self.cfg = dataclasses.replace(config)
        self._log = log
        self.rank, self.world = 0, 1
        self.distributed = False
        self._pool = None

    def say(self, message: str) -> None:
        if self.rank == 0 and self._log is not None:
            bar = getattr(self, "bar", None)  # a line said mid-run goes above the progress bar, not into it
            with bar.external_write_mode(file=sys.stderr) if bar is not None else nullcontext():
                self._log(message)

    # ---- setup -------------------------------------------------------------------------

    def _setup_distributed(self, device: torch.device) -> torch.device:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return device
        import torch.distributed as dist

        if device.type == "cuda":
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self._owns_group = True
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.distributed = True
        return device

    def _resolve_settings(self, dataset: GlyphDataset, reference: dict | None, fill: tuple, device) -> str:
        """Fill every option not given: from the checkpoint (`fill`), then the preset, then DEFAULTS."""
        cfg = self.cfg
        steps_given, limit_given = cfg.steps is not None, cfg.time_limit is not None
        if reference is not None:
            saved = dict(reference.get("train_config", {}))
            saved.update(ModelConfig.from_dict(reference["model_config"]).to_dict())
            if cfg.resume:
                self._check_resume_options(saved)
            for name in fill:
                if getattr(cfg, name) is None and saved.get(name) is not None:
                    setattr(cfg, name, saved[name])
                elif getattr(cfg, name) is None and cfg.resume and name in DEFAULTS and "train_config" in reference:
                    # an option newer than the run (--iou-weight, --lr-decay-steps, ...): as the run was trained,
                    # off, whatever today's preset says
                    setattr(cfg, name, DEFAULTS[name])
        if steps_given and not limit_given:
            cfg.time_limit = 0.0  # the steps asked for, all of them, however long they take
        preset = cfg.preset or "auto"
        if preset == "auto":
            preset = "full" if device.type == "cuda" else "cpu"
        if preset not in PRESETS:
            raise FontgenError(f"--preset must be auto, {', '.join(PRESETS)}; got {cfg.preset!r}")
        cfg.preset = preset  # recorded resolved: a resumed run on another machine keeps it
        for name, value in PRESETS[preset].items():  # in order: a callable sees the fields before it
            if getattr(cfg, name) is None:
                setattr(cfg, name, value(cfg, dataset) if callable(value) else value)
        for name, value in DEFAULTS.items():
            if getattr(cfg, name) is None:
                setattr(cfg, name, value)
        if cfg.embedding_num is None:
            cfg.embedding_num = max(ModelConfig.embedding_num, dataset.embedding_num)
        for name in ("steps", "batch_size", "d_steps", "perceptual_every", "sample_every", "checkpoint_every"):
            value = getattr(cfg, name)
            if not isinstance(value, int) or value < 1:
                raise FontgenError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if cfg.const_target not in ("fake", "real"):
            raise FontgenError(f"--const-target must be fake or real, got {cfg.const_target!r}")
        for name in ("l1_weight", "stroke_weight", "gap_weight", "iou_weight", "const_weight", "perceptual_weight", "category_weight", "gan_weight",
                     "grad_clip", "warmup_steps", "lr_schedule", "lr_decay_steps", "checkpoint_minutes", "time_limit"):
            if getattr(cfg, name) < 0:
                raise FontgenError(f"--{name.replace('_', '-')} must not be negative")
        if not cfg.lr > 0:
            raise FontgenError(f"--lr must be positive, got {cfg.lr}")
        if not 0 <= cfg.ema < 1:
            raise FontgenError(f"--ema must be in [0, 1), got {cfg.ema}")
        return preset

    def _check_resume_options(self, saved: dict) -> None:
        """Options given again on --resume: the same as the run's, or changeable (and said), or refused."""
        changed, refused = [], []
        for name in RESUME_FIELDS:
            given = getattr(self.cfg, name)
            if given is None or name in MODEL_FIELDS or name not in saved:  # model: _check_reference says it
                continue
            if name == "preset" and saved[name] == "auto":  # runs recorded before presets were resolved
                continue
            if _same_option(given, saved[name]):
                continue
            flag = f"--{name.replace('_', '-')} {given}"
            (changed if name in CHANGEABLE_ON_RESUME else refused).append(f"{flag} (the run has {saved[name]})")
        if refused:
            raise FontgenError(f"cannot resume {self.cfg.run} with {', '.join(refused)}: a resumed run keeps the "
                               "options it was trained with. Leave them out (every option comes back from the "
                               "checkpoint), or start a new run from its weights with --init-from")
        if changed:
            self.say(f"fontgen train: resuming with {', '.join(changed)}")

    def _model_config(self):
        cfg = self.cfg
        values = {name: getattr(cfg, name) for name in MODEL_FIELDS if getattr(cfg, name) is not None}
        return ModelConfig(**values)

    def _check_reference(self, reference: dict | None, what: str, path: Path) -> None:
        if reference is None:
            return
        current = self.model_config.to_dict()
        diff = model_config_diff(ModelConfig.from_dict(reference["model_config"]).to_dict(), current)
        if diff:
            hint = ("resume with the same model options (or leave them out to reuse the checkpoint's)"
                    if what == "resume" else "initialise only from a checkpoint of the same model config")
            raise FontgenError(f"cannot {what} from {path}: it was trained with a different model config: "
                               f"{'; '.join(diff)}. {hint[0].upper() + hint[1:]}.")

    def _check_same_styles(self, reference: dict, path: Path) -> None:
        def table(styles):
            return [(int(s["id"]), s.get("sha256"), s.get("face")) for s in styles]

        if table(reference.get("styles", [])) != table(s.to_dict() for s in self.dataset.styles):
            raise FontgenError(f"cannot resume {path} on {self.dataset.root}: its style table differs from the one the "
                               f"run was trained with (dataset {reference.get('dataset')}); resume on that dataset, "
                               "or start a new run with --init-from to adapt the weights to this one")

    def _claim_run_dir(self) -> None:
        """Decide the run folder, lock it (one process per run), clean what killed runs left."""
        cfg = self.cfg
        runs_dir = Path(cfg.runs_dir)
        run = None
        if cfg.resume:
            run = cfg.run if cfg.run is not None else read_latest(runs_dir)
            if run is None:
                raise FontgenError(f"--resume: no run to resume (no --run and no {runs_dir / 'latest'})")
            run = Path(run).absolute()
            if not run.is_dir():
                raise FontgenError(f"--resume: there is no run folder {run}")
        elif cfg.run is not None:
            run = check_output_folder(cfg.run, "run", option="--run", force_hint=False)
        if self.rank == 0:
            self._created_runs_dir = not runs_dir.exists()
            if run is None:
                run = new_run_dir(runs_dir)
                self._created_run = True
            else:
                self._created_run = not run.exists()
                run.mkdir(parents=True, exist_ok=True)
            self._lock = FolderLock(run, "run folder")
            if cfg.resume and not (run / CHECKPOINT_NAME).is_file():
                raise FontgenError(f"--resume: {run} has no {CHECKPOINT_NAME} to resume from")
            if not cfg.resume and (run / CHECKPOINT_NAME).exists():
                raise FontgenError(f"{run} already holds a checkpoint; pass --resume to continue it, or another "
                                   "--run")
            removed = clean_stale_temps(run) + clean_stale_temps(runs_dir) + remove_abandoned_runs(runs_dir, run)
            if removed:
                self.say(f"fontgen train: removed {len(removed)} leftovers of killed runs "
                         f"({', '.join(p.name for p in removed[:4])}{', ...' if len(removed) > 4 else ''})")
        if self.distributed:  # rank 0 names the run
            import torch.distributed as dist

            name = [str(run)]
            dist.broadcast_object_list(name, src=0)
            run = Path(name[0])
        cfg.run = self.run_dir = Path(run)
        self.ckpt_path = self.run_dir / CHECKPOINT_NAME

    def _setup(self) -> None:
        """Everything before the first step, in the order a reader needs it."""
        cfg = self.cfg
        if cfg.resume and cfg.init_from is not None:
            raise FontgenError("--resume and --init-from exclude each other")
        device = self.device = self._setup_distributed(pick_device(cfg.device or "auto"))
        self.cuda = device.type == "cuda"
        self.threads = set_threads(cfg.threads)
        self._claim_run_dir()
        reference = self._resolve(device)
        self._choose_speed_options()
        self._build_models(reference)
        self._build_optimizers()
        self._wrap_models()
        from fontgen.losses import LossWeights

        self.loss_weights = LossWeights(gan=cfg.gan_weight, l1=cfg.l1_weight, const=cfg.const_weight,
                                        perceptual=cfg.perceptual_weight, category=cfg.category_weight,
                                        stroke=cfg.stroke_weight, gap=cfg.gap_weight, iou=cfg.iou_weight)
        self.feed = BatchFeed(self.dataset, self.train_rows, cfg.seed, self.global_batch, self.steps_per_epoch,
                              self.rank, self.world, self.device, self.model_config.image_size, self.channels_last,
                              self.augment_gen)
        self.val_batch = self.feed.fixed_val_batch()
        if self.cuda:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fontgen-data")

    def _resolve(self, device) -> dict | None:
        """Open the dataset and settle every option (checkpoint, preset, defaults); returns the
        checkpoint the run starts from (--resume, --init-from), or None."""
        cfg = self.cfg
        self.resume_state = reference = None
        fill = ()
        if cfg.resume:
            ref_path, reference = self.ckpt_path, load_checkpoint(self.ckpt_path)
            self.resume_state, fill = reference, RESUME_FIELDS
        elif cfg.init_from is not None:
            ref_path, reference = Path(cfg.init_from), load_checkpoint(cfg.init_from)
            fill = MODEL_FIELDS
        if cfg.data is None:  # a resumed run goes on with its own dataset
            trained_on = reference.get("dataset") if cfg.resume else None
            cfg.data = Path(trained_on) if trained_on and Path(trained_on).is_dir() else cfg.default_data
        self.dataset = ds = GlyphDataset(cfg.data)
        self.train_rows = ds.pair_indices("train")
        if len(self.train_rows) == 0:
            raise FontgenError(f"dataset {ds.root} has no training pairs")
        auto_preset = cfg.preset in (None, "auto")
        preset = self._resolve_settings(ds, reference, fill, device)
        self.model_config = mc = self._model_config()
        if reference is not None:
            self._check_reference(reference, "resume" if cfg.resume else "initialise", ref_path)
        if cfg.resume:
            self._check_same_styles(reference, ref_path)
        if ds.embedding_num > mc.embedding_num:
            raise FontgenError(f"the dataset has style ids up to {ds.embedding_num - 1} but the model has only "
                               f"{mc.embedding_num} style embeddings"
                               f"{' (from the checkpoint)' if reference is not None else ''}; render the dataset "
                               f"with style ids below {mc.embedding_num}, or train a new model")
        self.global_batch = cfg.batch_size * self.world
        self.steps_per_epoch = max(1, len(self.train_rows) // self.global_batch)
        self._origin = "the resumed run's settings" if cfg.resume else \
            f"preset {preset}{' (auto)' if auto_preset else ''}"
        return reference

    def _choose_speed_options(self) -> None:
        """How the step runs on this machine (none of it changes what is learnt), and say so."""
        cfg, mc, ds = self.cfg, self.model_config, self.dataset
        # a CPU with bf16 hardware: bf16 with channels_last, the cpu preset's step 83 -> 72 ms at the
        # same display quality (docs/benchmarks.md); bf16 alone gains little (79 ms), channels_last
        # alone loses (88 ms)
        cpu_bf16 = self.device.type == "cpu" and cpu_has_native_bf16()
        self.bf16 = cfg.bf16 if cfg.bf16 is not None else (self.cuda or cpu_bf16)
        # channels_last pays for convolutions but instance norm returns NCHW and converts back at
        # every one of its calls: on a GPU only with batch norm until a measurement says otherwise
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else \
            ((self.cuda and mc.norm == "batch") or (cpu_bf16 and self.bf16))
        # D sees real and fake pairs as one batch unless batch norm would mix their statistics
        self.d_batched = mc.spectral_norm or mc.norm != "batch"
        self.log_late = self.cuda  # log a step's losses while the next one runs (no GPU stall per step)
        if cfg.deterministic:  # the same numbers every run, at some cost in speed
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        if self.cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = not cfg.deterministic
        self.say(f"fontgen train: {self._origin} on {self.device}"
                 f"{'' if self.cuda else f' ({self.threads} threads)'}"
                 f"{f' x{self.world} processes' if self.world > 1 else ''}: {mc.image_size} px, ngf {mc.ngf}, "
                 f"ndf {mc.ndf}, batch {cfg.batch_size}{' per process' if self.world > 1 else ''}, {cfg.steps} steps"
                 f"{f' (at most {cfg.time_limit:g} minutes)' if cfg.time_limit > 0 else ''} "
                 f"({len(self.train_rows)} training pairs, {self.steps_per_epoch} steps/epoch)"
                 f"{', bf16' if self.bf16 else ''}, perceptual weight {cfg.perceptual_weight}")
        if ds.image_size != mc.image_size:
            hint = (f" (upsampled: render at --size {mc.image_size} for sharp targets)"
                    if ds.image_size < mc.image_size else "")
            self.say(f"fontgen train: the dataset is {ds.image_size} px, the model {mc.image_size} px: batches are "
                     f"resized on the device{hint}")

    def _build_models(self, reference: dict | None) -> None:
        """G and D (from the checkpoint's weights, if any), the RNG streams, the perceptual loss."""
        from fontgen.losses import PerceptualLoss, vgg16_features

        cfg, device = self.cfg, self.device
        # the same seed on every rank (DDP also broadcasts rank 0's weights)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        random.seed(cfg.seed)
        G, D = build_models(self.model_config)
        if reference is not None:
            G.load_state_dict(reference["generator"])
            if "discriminator" in reference:
                D.load_state_dict(reference["discriminator"])
        if self.rank > 0:  # distinct dropout streams per rank; rank 0 matches a single process
            torch.manual_seed(cfg.seed + 1_000_003 * self.rank)
        # drawn where the images are: no host round trip for the affine parameters
        self.augment_gen = torch.Generator(device=device).manual_seed(cfg.seed * 7919 + 17 + self.rank)
        self.frozen = []
        if cfg.freeze_encoder:
            self.frozen = list(G.down.modules())
            G.down.requires_grad_(False)
        G.to(device)
        D.to(device)
        if self.channels_last:
            G.to(memory_format=torch.channels_last)
            D.to(memory_format=torch.channels_last)
        self.G_raw, self.D_raw = G, D
        # the weight average generate draws with (--ema): it smooths the noise of the last steps, as
        # --lr-decay-steps does (+0.005 display IoU alone, nothing on top of the decay; docs/benchmarks.md);
        # a resumed run continues its average
        self.G_ema = None
        if cfg.ema > 0:
            self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
            saved = (self.resume_state or {}).get("generator_ema")
            if saved is not None:
                self.G_ema.load_state_dict(saved)
        # before anything is written: offline without VGG weights this stops here
        self.perceptual = None
        if cfg.perceptual_weight > 0:
            self.perceptual = PerceptualLoss(vgg16_features(weights_path=cfg.vgg_weights), device=device)

    def _build_optimizers(self) -> None:
        """Adam for G (its trainable part) and D; a resumed run's states, step and RNG come back."""
        cfg = self.cfg
        # fused: one kernel per tensor instead of ~6 per tensor from Python; on the cpu preset's CPU step
        # the optimizers took 8% (docs/benchmarks.md, round 11)
        adam = dict(betas=(cfg.beta1, cfg.beta2), fused=True)
        self.opt_g = torch.optim.Adam([p for p in self.G_raw.parameters() if p.requires_grad], lr=cfg.lr, **adam)
        self.opt_d = torch.optim.Adam(self.D_raw.parameters(), lr=cfg.lr, **adam)
        self.start_step = 0
        self.seconds_before = 0.0  # training time of the run before this process (a resumed run's)
        state = self.resume_state
        if state is None:
            return
        try:
            self.opt_g.load_state_dict(state["optimizer_g"])
            self.opt_d.load_state_dict(state["optimizer_d"])
        except (KeyError, ValueError) as exc:
            raise FontgenError(f"cannot resume: the optimizer state does not fit ({exc}); "
                               "was the checkpoint trained with other --freeze-encoder?") from None
        self.start_step = int(state["step"])
        self.seconds_before = float(state.get("train_seconds", 0.0))
        self._restore_rng(state.get("rng", {}))

    def _wrap_models(self) -> None:
        """DDP across processes, torch.compile on request; G_raw and D_raw stay the plain modules."""
        G, D = self.G_raw, self.D_raw
        self.G, self.D = G, D
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.cuda else None
            if self.cuda and self.model_config.norm == "batch":
                G = self.G_raw = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
                D = self.D_raw = torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
                self.frozen = list(G.down.modules()) if self.cfg.freeze_encoder else []
            self.G = DDP(G, device_ids=ids)
            self.D = DDP(D, device_ids=ids)
        self.D_for_g = D
        if self.cfg.compile:
            self.G = torch.compile(self.G)
            self.D = torch.compile(self.D)
            self.D_for_g = torch.compile(D)

    def _prepare_run_dir(self) -> None:
        if self.rank != 0:
            return
        (self.run_dir / "samples").mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "log.jsonl"
        if self.start_step > 0 and log_path.exists():
            # drop the lines of steps after the checkpoint: they are trained again
            kept = []
            for line in log_path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= self.start_step:
                        kept.append(line)
                except json.JSONDecodeError:
                    pass
            log_path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        elif self.start_step == 0 and log_path.exists():
            log_path.unlink()
        self.log_file = open(log_path, "a", encoding="utf-8")
        self._write_config()

    def _write_config(self) -> None:
        if self.rank == 0:
            (self.run_dir / "train_config.json").write_text(
                json.dumps({"train": self.cfg.to_dict(), "model": self.model_config.to_dict()}, indent=1) + "\n",
                encoding="utf-8")

    # ---- checkpoint state --------------------------------------------------------------

    def _local_rng(self) -> dict:
        state = {"torch_cpu": torch.get_rng_state(), "augment": self.augment_gen.get_state()}
        if self.cuda:
            state["torch_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _rng_state(self) -> dict:
        local = self._local_rng()
        rng = {**local, "numpy": _json_tensor(_numpy_state()), "python": _json_tensor(list(random.getstate()))}
        if self.distributed:
            import torch.distributed as dist

            gathered = [None] * self.world
            dist.all_gather_object(gathered, {k: v.cpu() for k, v in local.items()})
            rng["per_rank"] = gathered
        return rng

    def _restore_rng(self, rng: dict) -> None:
        local = rng
        per_rank = rng.get("per_rank")
        if self.world == 1 and per_rank is not None and len(per_rank) > 1:
            self.say(f"fontgen train: note: the checkpoint was written by {len(per_rank)} processes; one process "
                     "goes on with rank 0's random streams and the whole batch, so the run differs from an "
                     "uninterrupted multi-process one")
        if self.world > 1:
            if per_rank is not None and len(per_rank) == self.world:
                local = per_rank[self.rank]
            else:
                self.say("fontgen train: warning: resuming with another number of processes; the data shards "
                         "and dropout streams differ from an uninterrupted run")
                return
        if "torch_cpu" in local:
            torch.set_rng_state(local["torch_cpu"])
        if "augment" in local:
            try:
                self.augment_gen.set_state(local["augment"])
            except RuntimeError:  # written on another kind of device: its generator state does not fit
                self.say("fontgen train: note: the augmentation random stream starts anew (the checkpoint was "
                         "written on another kind of device)")
        if self.cuda and "torch_cuda" in local:
            torch.cuda.set_rng_state(local["torch_cuda"], self.device)
        if "numpy" in rng:
            _set_numpy_state(_tensor_json(rng["numpy"]))
        if "python" in rng:
            _set_python_state(_tensor_json(rng["python"]))

    def checkpoint_state(self, step: int) -> dict:
        ds = self.dataset
        return {
            "model_config": self.model_config.to_dict(),
            "generator": self.G_raw.state_dict(),
            **({"generator_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
            "discriminator": self.D_raw.state_dict(),
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "step": step,
            "epoch": step // self.steps_per_epoch,
            "train_seconds": self.train_seconds(),
            "rng": self._rng_state(),
            "styles": [s.to_dict() for s in ds.styles],
            "source": ds.source_font.to_dict(),
            "sources": [entry.to_dict() for entry in ds.source_fonts],
            "image_size": self.model_config.image_size,
            "data_image_size": ds.image_size,
            "dataset": str(ds.root.resolve()),
            "charset": "".join(ds.requested_chars()),  # generate completes these, wherever the dataset went
            "train_config": self.cfg.to_dict(),
            "world_size": self.world,
            "torch_version": str(torch.__version__),
        }

    def save(self, step: int) -> None:
        state = self.checkpoint_state(step)  # every rank: gathers the RNG states
        if self.rank == 0:
            save_checkpoint(self.ckpt_path, state)
            self._write_config()  # the time limit may have moved the run's end
            if not getattr(self, "_latest_updated", False):
                # runs/latest moves to this run once it has a checkpoint, not before: a run
                # stopped before its first checkpoint does not hide the previous one
                update_latest(Path(self.cfg.runs_dir), self.run_dir)
                self._latest_updated = True
        self.saved_step = step
        self._saved_at = time.monotonic()

    # ---- the step ----------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """The lr of optimizer step `step` (0-based): halved every lr_schedule epochs, then falling
        linearly to 0 over the last lr_decay_steps steps of the run."""
        cfg = self.cfg
        lr = cfg.lr
        if cfg.lr_schedule > 0:
            epoch = step // self.steps_per_epoch
            lr = max(cfg.lr * 0.5 ** (epoch // cfg.lr_schedule), min(LR_FLOOR, cfg.lr))
        if cfg.lr_decay_steps > 0:
            lr *= min(1.0, (cfg.steps - step) / cfg.lr_decay_steps)
        return lr

    @torch.no_grad()
    def _update_ema(self, step: int) -> None:
        """G_ema <- decay * G_ema + (1 - decay) * G; early on the decay is lower (the average of a
        young run would otherwise be mostly its random start)."""
        decay = min(self.cfg.ema, (1 + step) / (10 + step))
        if not hasattr(self, "_ema_pairs"):  # state-dict tensors share storage with the modules
            ema, live = self.G_ema.state_dict(), self.G_raw.state_dict()
            floats = [k for k in ema if ema[k].is_floating_point()]
            self._ema_pairs = ([ema[k] for k in floats], [live[k] for k in floats],
                               [(ema[k], live[k]) for k in ema if k not in floats])  # batch norm's counters
        averaged, current, counters = self._ema_pairs
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
        for mine, theirs in counters:
            mine.copy_(theirs)

    def weights_at(self, step: int):
        w = self.loss_weights
        if self.cfg.warmup_steps > 0 and step < self.cfg.warmup_steps:
            ramp = step / self.cfg.warmup_steps
            w = dataclasses.replace(w, l1=w.l1 * ramp, const=w.const * ramp)
        return w

    def autocast(self):
        if not self.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def train_step(self, step: int, real_a, real_b, labels) -> tuple[list[str], torch.Tensor]:
        """One D update (or d_steps) and one G update; returns loss names and a tensor of values."""
        from fontgen.losses import discriminator_loss, generator_loss

        cfg = self.cfg
        weights = self.weights_at(step)
        lr = self.lr_at(step)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

        with self.autocast():
            fake_b, encoded_a = self.G(real_a, labels, return_feat=True)

        # D: the detached fake, d_steps updates
        self.D_raw.requires_grad_(True)
        for _ in range(cfg.d_steps):
            self.opt_d.zero_grad(set_to_none=True)
            with self.autocast():
                d_loss, d_parts = discriminator_loss(self.D, real_a, real_b, fake_b.detach(), labels, weights,
                                                     batched=self.d_batched)
            d_loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.D_raw.parameters(), cfg.grad_clip)
            self.opt_d.step()

        # G: against the freshly updated D, which is frozen here (no D gradients, no DDP sync)
        self.D_raw.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        use_perceptual = self.perceptual is not None and step % cfg.perceptual_every == 0
        with self.autocast():
            g_loss, g_parts = generator_loss(self.G_raw, self.D_for_g, real_a, real_b, fake_b, encoded_a, labels,
                                             weights, perceptual=self.perceptual, const_target=cfg.const_target,
                                             use_perceptual=use_perceptual)
        g_loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in self.G_raw.parameters() if p.requires_grad], cfg.grad_clip)
        self.opt_g.step()
        if self.G_ema is not None:
            self._update_ema(step)
        self.D_raw.requires_grad_(True)

        names, values = ["d_loss", "g_loss"], [d_loss.detach().float(), g_loss.detach().float()]
        for prefix, parts in (("d_", d_parts), ("g_", g_parts)):
            for key, value in parts.items():
                name = key if key.startswith(prefix) else prefix + key
                if name in names:
                    continue
                names.append(name)
                values.append(torch.as_tensor(value).detach().float().to(self.device).reshape(()))
        return names, torch.stack(values)

    @torch.no_grad()
    def write_samples(self, step: int) -> Path | None:
        if self.rank != 0:
            return None
        from PIL import Image

        real_a, real_b, labels = self.val_batch
        if self.G_ema is not None:  # what generate will draw
            with self.autocast():
                fake_b = self.G_ema(real_a, labels)
        else:
            G = self.G_raw
            G.eval()
            try:
                with self.autocast():
                    fake_b = G(real_a, labels)
            finally:
                G.train()
                self._refreeze()
        path = self.run_dir / "samples" / f"step-{step:06d}.png"
        tmp = temp_path(path, suffix=True)
        Image.fromarray(sample_grid(real_a, fake_b, real_b), mode="L").save(tmp, format="PNG")
        os.replace(tmp, path)
        return path

    def _refreeze(self) -> None:
        for m in self.frozen:  # batch-norm statistics of a frozen encoder stay fixed
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()

    # ---- the loop ----------------------------------------------------------------------

    def run(self) -> Path:
        started = False
        try:
            self._setup()
            self._prepare_run_dir()
            started = True
            return self._loop()
        except BaseException:
            if not started and getattr(self, "_created_run", False) and self.rank == 0:
                shutil.rmtree(self.run_dir, ignore_errors=True)  # a run that never began leaves nothing
                if self._created_runs_dir:
                    with contextlib.suppress(OSError):
                        Path(self.cfg.runs_dir).rmdir()  # made for this run alone (and still empty)
            raise
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            if getattr(self, "log_file", None) is not None:
                self.log_file.close()
            if getattr(self, "_lock", None) is not None:
                self._lock.release()
            if getattr(self, "_owns_group", False):
                import torch.distributed as dist

                dist.destroy_process_group()

    def _catch_stop_signals(self):
        """SIGINT/SIGTERM ask the loop to checkpoint and stop after the current step; a second SIGINT
        stops at once. Returns a function that puts the previous handlers back."""
        import threading

        self._stop_signal = None
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signal handlers live in the main thread only
        previous = {}

        def ask_stop(signum, frame):
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, ask_stop)
        return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]

    def _to_host(self, values: torch.Tensor):
        """Start copying a step's losses to the host: (tensor, event to wait on, or None on a CPU)."""
        if not self.cuda:
            return values.detach().clone(), None
        host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
        host.copy_(values, non_blocking=True)
        done = torch.cuda.Event()
        done.record()
        return host, done

    def _log_step(self, step: int, names: list[str], values: torch.Tensor, done, ips: float) -> None:
        """Check a finished step's losses (divergence stops the run), write its log line, move the bar."""
        if done is not None:
            done.synchronize()
        values = values.tolist()
        self._ips_avg = ips if self._ips_avg is None else 0.9 * self._ips_avg + 0.1 * ips
        self._watch_speed(step, self._ips_avg)
        if not all(math.isfinite(v) for v in values):
            bad = ", ".join(f"{n}={v}" for n, v in zip(names, values) if not math.isfinite(v))
            kept = (f"the last good checkpoint {self.ckpt_path} (step {self.saved_step}) is kept"
                    if self.saved_step is not None else "no checkpoint was written")
            raise FontgenError(f"training diverged at step {step}: {bad}; {kept}. Try a lower --lr, "
                               "--grad-clip 1, or --warmup-steps")
        if self.rank != 0:
            return
        record = {"step": step, "epoch": (step - 1) // self.steps_per_epoch,
                  **{n: round(v, 6) for n, v in zip(names, values)},
                  "lr": self.lr_at(step - 1), "images_per_s": round(ips, 2)}
        self.log_file.write(json.dumps(record) + "\n")
        self.log_file.flush()
        shown = dict(zip(names, values))
        self.bar.set_postfix({"D": f"{shown['d_loss']:.3f}", "G": f"{shown['g_loss']:.3f}",
                              **({"L1": f"{shown['g_l1']:.4f}"} if "g_l1" in shown else {}),
                              "img/s": f"{self._ips_avg:.0f}"}, refresh=False)
        self.bar.update(1)

    SLOW_FACTOR = 3.0  # warn when steps run this many times slower than the best so far

    def _watch_speed(self, step: int, ips_avg: float) -> None:
        """Warn once when steps become far slower than this run's best (a busy CPU, usually)."""
        if step - self.start_step < 10 or getattr(self, "_warned_slow", False):
            return
        self._best_ips = max(getattr(self, "_best_ips", 0.0), ips_avg)
        if ips_avg * self.SLOW_FACTOR < self._best_ips:
            self._warned_slow = True
            hint = "" if self.cuda or self.threads == 1 else (
                f" With {self.threads} threads a busy CPU stalls every step: try --threads 1.")
            self.say(f"fontgen train: warning: steps are {self._best_ips / ips_avg:.0f}x slower than earlier in "
                     f"this run ({ips_avg:.1f} images/s, was {self._best_ips:.1f}); is another process using the "
                     f"{'GPU' if self.cuda else 'CPU'}?{hint}")

    def _should(self, stop: bool, due: bool, planned: int) -> tuple[bool, bool, int]:
        """(stop, checkpoint due, planned steps) agreed by every process, so all of them save the same
        step and end together: any process's stop or due, the fewest planned steps."""
        if not self.distributed:
            return stop, due, planned
        import torch.distributed as dist

        flags = torch.tensor([float(stop), float(due), -float(planned)], dtype=torch.float64, device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0] > 0), bool(flags[1] > 0), int(-flags[2])

    # ---- the time limit ----------------------------------------------------------------

    TIME_PLAN_AFTER = 20  # steps of this process before its speed is trusted
    SPEED_WINDOW = 1000  # steps the speed is measured over (a slower spell shows within it)

    def train_seconds(self) -> float:
        """Seconds the run has trained, over all its processes' lives (what --time-limit counts)."""
        started = getattr(self, "_loop_started", None)
        return self.seconds_before + (time.monotonic() - started if started is not None else 0.0)

    def _planned_steps(self, step: int) -> int:
        """The steps the time limit leaves room for at this machine's recent speed, at most the run's."""
        cfg = self.cfg
        cap = self._plan_cap[0]
        if cfg.time_limit <= 0:
            return cap
        now = time.monotonic()
        self._speed_marks.append((step, now))
        if step - self.start_step < self.TIME_PLAN_AFTER:
            return cfg.steps
        first_step, first_time = self._speed_marks[0]
        steps_per_s = (step - first_step) / max(now - first_time, 1e-9)
        left_s = cfg.time_limit * 60 - self.train_seconds()
        return min(cap, step + max(0, int(steps_per_s * left_s)))

    def _replan(self, step: int, planned: int) -> None:
        """Move the run's end to `planned` steps with its lr decay reaching 0 there. While the lr is
        still flat the end may move either way (a slow spell early on costs nothing once it passes)
        and the decay keeps its share of the run; once the decay has begun the end only comes
        sooner, and the lr falls on from where it is (no jump)."""
        cfg = self.cfg
        cap, cap_decay = self._plan_cap
        if planned == cfg.steps:
            return
        decaying = cfg.lr_decay_steps > 0 and step > cfg.steps - cfg.lr_decay_steps
        share = max(2, round(cap_decay * planned / cap)) if cap_decay else 0  # a decay asked for stays on
        if not decaying and step <= planned - share:
            cfg.lr_decay_steps = share
        elif planned < cfg.steps:
            # > 0: planned >= step and cfg.steps > planned
            lr_factor = min(1.0, (cfg.steps - step) / cfg.lr_decay_steps) if cfg.lr_decay_steps else 1.0
            cfg.lr_decay_steps = max(1, round(min(share, (planned - step) / lr_factor)))
        else:
            return  # a later end now would lift the lr again
        if planned < 0.98 * cap and not self._said_cut:  # not for the few steps a passing slow spell costs
            self._said_cut = True
            rate = (step - self._speed_marks[0][0]) / max(time.monotonic() - self._speed_marks[0][1], 1e-9)
            self.say(f"fontgen train: at {rate:.1f} steps/s the {cfg.time_limit:g}-minute limit (--time-limit) "
                     f"leaves room for about {planned} of {cap} steps; the run will end there, its lr decay with "
                     "it (the end moves with the speed until the decay begins)")
        cfg.steps = planned
        self.bar.total = planned

    def _loop(self) -> Path:
        from tqdm import tqdm

        cfg = self.cfg
        total = cfg.steps
        step = self.start_step
        self.saved_step = step if self.resume_state is not None else None
        if step >= total:
            self.say(f"fontgen train: {self.ckpt_path} is already at step {step} of {total}; nothing to do "
                     "(pass a larger --steps to continue)")
            return self.ckpt_path
        if 0 < cfg.time_limit * 60 <= self.seconds_before:
            self.say(f"fontgen train: {self.ckpt_path} has trained its {cfg.time_limit:g} minutes (--time-limit) at "
                     f"step {step}; nothing to do (pass --steps, and --time-limit if you want one, to continue)")
            return self.ckpt_path
        if step > 0:
            self.say(f"fontgen train: resuming {self.run_dir} at step {step}")
        self.G_raw.train()
        self.D_raw.train()
        self._refreeze()
        restore_signals = self._catch_stop_signals()
        try:
            return self._steps(step, tqdm)
        finally:
            restore_signals()

    def _steps(self, step: int, tqdm) -> Path:
        """The loop. On CUDA a step's losses are copied to the host while the next step runs and
        logged one step late, so the GPU never waits for the log; every sample or checkpoint
        first logs what is pending (a diverged step is never saved)."""
        cfg = self.cfg
        self.bar = tqdm(total=cfg.steps, initial=step, unit="step", desc="train", dynamic_ncols=True,
                        disable=not cfg.progress or self.rank != 0, file=sys.stderr)
        feed = self.feed
        batch = self._pool.submit(feed.load_rows, feed.batch_rows(step), step) if self._pool is not None else None
        self._ips_avg = None
        t_last = time.perf_counter()
        self._saved_at = self._loop_started = time.monotonic()
        self._speed_marks = collections.deque(maxlen=self.SPEED_WINDOW)
        self._plan_cap = (cfg.steps, cfg.lr_decay_steps)  # the run's steps and decay, before any time limit
        self._said_cut = False
        unlogged = None  # (step, names, losses on the host, copy-done event, images/s)
        try:
            while step < cfg.steps:
                if batch is not None:
                    host = batch.result()
                    batch = (self._pool.submit(feed.load_rows, feed.batch_rows(step + 1), step + 1)
                             if step + 1 < cfg.steps else None)
                else:
                    host = feed.load_rows(feed.batch_rows(step), step)
                real_a, real_b, labels = feed.to_device(*host, augment=cfg.augment)
                names, values = self.train_step(step, real_a, real_b, labels)
                if self.distributed:
                    import torch.distributed as dist

                    dist.all_reduce(values)
                    values /= self.world
                step += 1
                now = time.perf_counter()
                ips = self.global_batch / max(now - t_last, 1e-9)
                t_last = now
                if unlogged is not None:
                    self._log_step(*unlogged)
                unlogged = (step, names, *self._to_host(values), ips)
                stop, due, planned = self._should(self._stop_signal is not None,
                                                  0 < cfg.checkpoint_minutes * 60 <= time.monotonic() - self._saved_at,
                                                  self._planned_steps(step))
                self._replan(step, planned)
                sample = step % cfg.sample_every == 0 or step == cfg.steps
                save = stop or due or step % cfg.checkpoint_every == 0 or step == cfg.steps
                if sample or save or not self.log_late:
                    self._log_step(*unlogged)
                    unlogged = None
                if sample:
                    self.write_samples(step)
                if save:
                    self.save(step)
                if stop:
                    raise FontgenError(f"stopped by {self._stop_signal or 'a signal'} at step {step} of {cfg.steps}; "
                                       f"checkpoint {self.ckpt_path} holds it. Continue with: fontgen train "
                                       f"--resume --run {self.run_dir}")
        finally:
            self.bar.close()
        cut = (f" (cut from {self._plan_cap[0]} to fit --time-limit {cfg.time_limit:g}: "
               f"{self.train_seconds() / 60:.3g} minutes of training)" if cfg.steps < self._plan_cap[0] else "")
        self.say(f"fontgen train: {cfg.steps} steps done{cut}; checkpoint {self.ckpt_path}")
        return self.ckpt_path
