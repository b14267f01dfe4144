"""Writing files without losing the user's: output folders fontgen may replace, temporary
names, locks, and the clean-up of what a killed process left behind.

Every step writes to a temporary sibling (``.NAME.tmp-PID``, with the file's suffix kept
after it where a reader cares) and renames it into place, so a kill leaves either the old
result or the new one. A folder is replaced only when fontgen wrote it (its marker file
says so) or the user passes --force; anything else is refused with a message.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from fontgen.errors import FontgenError

# kind of output folder -> (marker file, how to recognise fontgen's own)
_MARKERS = {
    "dataset": ("manifest.json", lambda data: data.get("format") == "fontgen-dataset"),
    "glyphs": ("manifest.json", lambda data: data.get("format") == "fontgen-glyphs"),
    "eval": ("metrics.json", lambda data: data.get("format") == "fontgen-eval"
             or {"checkpoint", "overall"} <= set(data)),  # metrics.json of fontgen before the format key
    "run": ("train_config.json", lambda data: {"train", "model"} <= set(data)),
}
_WRITER = {"dataset": "fontgen render", "glyphs": "fontgen generate", "eval": "fontgen evaluate",
           "run": "fontgen train"}
# .NAME.tmp-PID, .NAME.tmp-PID.ext, .NAME.old-PID
_TEMP_NAME = re.compile(r"^\..+\.(?:tmp|old)-(\d+)(?:\.[A-Za-z0-9]+)?$")
LOCK_NAME = ".lock"


def temp_path(path: Path, suffix: bool = False) -> Path:
    """This process's temporary sibling of `path` (keeping its suffix last when `suffix`)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix if suffix else ''}")


def written_by_fontgen(folder: Path, kind: str) -> bool:
    marker, recognise = _MARKERS[kind]
    try:
        data = json.loads((Path(folder) / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and bool(recognise(data))


def check_output_folder(folder: Path, kind: str, force: bool = False, option: str = "--out",
                        force_hint: bool = True) -> Path:
    """The absolute folder, once it is certain that fontgen may write it.

    Allowed: a folder that does not exist, an empty one, or one that fontgen itself wrote
    as `kind` (a dataset, generated glyphs, evaluation results, a training run). Anything
    else is refused unless `force`. The current folder (or one holding it) is never
    allowed: replacing it would pull the ground from under the shell.
    """
    folder = Path(folder).expanduser().absolute()
    resolved = folder.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise FontgenError(f"{option} {folder} is the current folder (or holds it); name a new folder for the "
                           f"output, e.g. {option} ./{kind}")
    if folder.exists() and not folder.is_dir():
        raise FontgenError(f"{option} {folder} is a file, not a folder; name a folder")
    if force or not folder.is_dir() or written_by_fontgen(folder, kind):
        return folder
    try:
        # a lock, or temporary files fontgen left, do not make a folder the user's
        empty = not any(p.name != LOCK_NAME and not _TEMP_NAME.match(p.name) for p in folder.iterdir())
    except OSError as exc:
        raise FontgenError(f"{option} {folder} cannot be read ({exc.strerror})") from None
    if empty:
        return folder
    marker = _MARKERS[kind][0]
    raise FontgenError(f"{option} {folder} already exists and was not written by {_WRITER[kind]} (no fontgen "
                       f"{marker} in it); nothing was changed. Name a new or empty folder"
                       f"{', or pass --force to replace it' if force_hint else ''}")


def check_writable(folder: Path, what: str) -> None:
    """Fail now, before hours of work, if `folder` (made if missing) cannot take new files."""
    folder = Path(folder)
    probe = temp_path(folder / "write-check")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FontgenError(f"cannot write {what} in {folder} ({exc.strerror or exc}); choose a writable folder "
                           "with --out") from None


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove fontgen's temporary files and folders in `folder` whose process is gone (a kill -9)."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if not match or pid_alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    return removed


class FolderLock:
    """An exclusive advisory lock on a folder (``folder/.lock``), held until `release` or exit.

    The lock file records the holder's pid for the message another process gets. Where
    the platform has no flock (Windows), locking is skipped.
    """

    def __init__(self, folder: Path, what: str):
        self.path = Path(folder) / LOCK_NAME
        self.handle = None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise FontgenError(f"{what} {folder} is in use by another fontgen process (pid {holder}); wait for it "
                               "to finish, or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing drops the flock
            self.handle = None


def is_locked(folder: Path) -> bool:
    """Whether a live process holds `folder`'s lock (False where there is no lock file)."""
    path = Path(folder) / LOCK_NAME
    if not path.exists():
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return True
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False
