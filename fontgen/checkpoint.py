"""Checkpoints: written atomically, read without executing code, found by run folder.

A checkpoint is one ``torch.save`` file holding only tensors, numbers, strings, lists and
dicts (so ``torch.load(weights_only=True)`` reads it and no pickle code ever runs):

    format, version       "fontgen-checkpoint", 1
    model_config          ModelConfig.to_dict()
    generator, discriminator             state dicts
    optimizer_g, optimizer_d             Adam state dicts
    step, epoch           training progress (step = optimizer steps done)
    train_seconds         training time so far, over resumes (what --time-limit counts; 0 if absent)
    rng                   RNG states as uint8 tensors (torch CPU/CUDA, numpy, python, augmentation)
    styles                the dataset's style table (list of dicts: id, name, font, geometry)
    source                the source (content) font entry with its geometry
    image_size            model resolution; data_image_size: the dataset's
    dataset               path of the dataset folder it was trained on
    charset               the characters the dataset was rendered for (generate's default)
    train_config          the TrainConfig as a dict

Writes go to a temporary file in the same folder, are fsynced and renamed over the old
file, so a kill at any moment leaves either the previous checkpoint or the new one.

Run folders live in WORKDIR/runs/NAME; WORKDIR/runs/latest is a symlink to the newest
(on platforms without symlinks, a text file holding the run folder's path).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch

from fontgen.errors import FontgenError
from fontgen.files import temp_path

FORMAT = "fontgen-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
LATEST = "latest"

_SCALARS = (bool, int, float, str, type(None))


def _check_value(value, where: str) -> None:
    if type(value) in _SCALARS or isinstance(value, torch.Tensor):  # exact types: no subclass pickles
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint key {where}.{key!r} is a {type(key).__name__}, not str/int")
            _check_value(item, f"{where}.{key}")
        return
    raise TypeError(f"checkpoint value {where} is a {type(value).__name__}: only tensors, numbers, strings, "
                    "lists and dicts may go into a checkpoint")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: directories cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: Path, state: dict) -> Path:
    """Write `state` (plus format/version) atomically to `path`: temp file, fsync, rename."""
    path = Path(path)
    state = {"format": FORMAT, "version": VERSION, **state}
    _check_value(state, "checkpoint")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint with weights_only=True on the CPU; any problem is a FontgenError."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FontgenError(f"no checkpoint at {path}; train first (`fontgen train`)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError,
            TypeError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FontgenError(f"{path} is not a readable fontgen checkpoint (truncated, corrupt or not a "
                           f"checkpoint: {first[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise FontgenError(f"{path} is not a fontgen checkpoint")
    if state.get("version") != VERSION:
        raise FontgenError(f"{path} is a fontgen checkpoint of format version {state.get('version')!r}; "
                           f"this fontgen reads version {VERSION}")
    missing = [k for k in ("model_config", "generator", "step") if k not in state]
    if missing:
        raise FontgenError(f"{path} is an incomplete fontgen checkpoint (missing {', '.join(missing)})")
    return state


# ---------------------------------------------------------------------------------------
# Run folders and runs/latest


def read_latest(runs_dir: Path) -> Path | None:
    """The run folder runs/latest points to (symlink, or text-file fallback), or None."""
    latest = Path(runs_dir) / LATEST
    if latest.is_symlink():
        target = Path(os.readlink(latest))
        return target if target.is_absolute() else (latest.parent / target)
    if latest.is_dir():
        return latest
    if latest.is_file():
        text = latest.read_text(encoding="utf-8").strip()
        if text:
            target = Path(text)
            return target if target.is_absolute() else (latest.parent / target)
    return None


def update_latest(runs_dir: Path, run_dir: Path) -> None:
    """Point runs/latest at run_dir, atomically (symlink to a temp name, then rename over)."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    latest = runs_dir / LATEST
    run_dir = Path(run_dir)
    try:
        target = run_dir.resolve().relative_to(runs_dir.resolve())
    except ValueError:
        target = run_dir.resolve()
    if latest.is_dir() and not latest.is_symlink():
        raise FontgenError(f"{latest} is a folder; it should be a link to the newest run (move it away)")
    tmp = temp_path(latest)
    with _latest_lock(runs_dir):  # runs finishing together: one update at a time, the last one wins
        tmp.unlink(missing_ok=True)
        try:
            os.symlink(target, tmp, target_is_directory=True)
        except (OSError, NotImplementedError):
            tmp.write_text(str(target) + "\n", encoding="utf-8")  # no symlinks here: a text file
        os.replace(tmp, latest)


@contextmanager
def _latest_lock(runs_dir: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the rename alone
        yield
        return
    with open(runs_dir / ".latest.lock", "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # held for a rename: a blocking wait is fine
        yield


def resolve_checkpoint(run_dir: Path | None = None, checkpoint: Path | None = None, workdir=None) -> Path:
    """The checkpoint to use: an explicit file, else RUN/checkpoint.pt, else runs/latest's.

    `workdir` is a cli.Workdir (anything with a `.runs` folder) or the work directory path.
    """
    if checkpoint is not None:
        path = Path(checkpoint)
        if path.is_dir():
            path = path / CHECKPOINT_NAME
        if not path.is_file():
            raise FontgenError(f"checkpoint {path} does not exist")
        return path
    if run_dir is not None:
        path = Path(run_dir) / CHECKPOINT_NAME
        if not path.is_file():
            raise FontgenError(f"run {run_dir} has no {CHECKPOINT_NAME}; train first (`fontgen train --run {run_dir}`)")
        return path
    if workdir is None:
        raise FontgenError("no checkpoint given: pass --run or --checkpoint, or train first (`fontgen train`)")
    runs = Path(getattr(workdir, "runs", None) or Path(workdir) / "runs")
    latest = read_latest(runs)
    if latest is None:
        raise FontgenError(f"no trained run in {runs} (no {runs / LATEST}); train first (`fontgen train`) "
                           "or pass --run / --checkpoint")
    path = latest / CHECKPOINT_NAME
    if not path.is_file():
        raise FontgenError(f"the latest run {latest} has no {CHECKPOINT_NAME} yet; train first (`fontgen train`) "
                           "or pass --run / --checkpoint")
    return path


# ---------------------------------------------------------------------------------------
# Loading a generator for inference (generate / evaluate)


def checkpoint_meta(state: dict) -> dict:
    """The non-weight facts of a checkpoint that generate/evaluate need."""
    return {
        "styles": state.get("styles", []),
        "source": state.get("source"),
        "sources": state.get("sources") or ([state["source"]] if state.get("source") else []),
        "image_size": state.get("image_size", state["model_config"].get("image_size")),
        "data_image_size": state.get("data_image_size"),
        "dataset": state.get("dataset"),
        "charset": state.get("charset"),
        "step": state.get("step"),
        "epoch": state.get("epoch"),
        "train_config": state.get("train_config", {}),
    }


def load_generator(path: Path, device="cpu"):
    """(Generator in eval mode on `device`, ModelConfig, meta dict) from a checkpoint file."""
    from fontgen.model import Generator, ModelConfig

    state = load_checkpoint(path)
    config = ModelConfig.from_dict(state["model_config"])
    generator = Generator(config)
    try:
        # the weight average when the run kept one (train --ema): the weights it was trained to draw with
        generator.load_state_dict(state.get("generator_ema") or state["generator"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise FontgenError(f"{path}: generator weights do not fit its model config ({first})") from None
    generator.to(device).eval()
    generator.requires_grad_(False)
    return generator, config, checkpoint_meta(state)
