"""The dataset folder: written by `render`, read by train / generate / evaluate.

Layout (DESIGN.md "Dataset folder"), everything memory-mappable and pickle-free:

    manifest.json      format, image size, source fonts, styles (id -> font, geometry), charset, split
    codepoints.npy     int32  [C]        every character with a source glyph
    source.npy         uint8  [V*C, S, S] the source (content) glyph of each character, once per source
                                         font (view): row v*C + c; view 0 is the primary source
    images.npy         uint8  [P, S, S]  target glyphs, one per (character, style) pair
    pair_char.npy      int32  [P]        row of the pair's character in codepoints/source
    pair_style.npy     int16  [P]        style id of the pair
    pair_split.npy     uint8  [P]        0 = train, 1 = validation (held-out characters)

Pixels are 8-bit grey, black ink (0) on white (255), in the em-box geometry of their font.

More than one source font ("sources" in the manifest; "source" is the first, the primary) gives
the generator several drawings of each character's content: it learns from a random one per
pair and generate averages what it draws from each (aligned first, fontgen.align), which
measurably beats the best one alone (docs/benchmarks.md, rounds 6 and 7). A character a later source lacks is drawn from the primary there.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fontgen.charsets import load_charset
from fontgen.errors import FontgenError
from fontgen.files import clean_stale_temps, temp_path
from fontgen.fonts import FontSpec, Geometry

FORMAT = "fontgen-dataset"
VERSION = 1
TRAIN, VAL = 0, 1
ARRAYS = {
    "codepoints": np.int32,
    "source": np.uint8,
    "images": np.uint8,
    "pair_char": np.int32,
    "pair_style": np.int16,
    "pair_split": np.uint8,
}


@dataclass(frozen=True)
class FontEntry:
    """A font as recorded in a manifest: where it was, what it was, how it was drawn."""

    path: str
    face: int
    family: str
    sha256: str
    geometry: Geometry

    @property
    def spec(self) -> FontSpec:
        return FontSpec(Path(self.path), self.face)

    def to_dict(self) -> dict:
        return {"path": self.path, "face": self.face, "family": self.family, "sha256": self.sha256,
                "geometry": self.geometry.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "FontEntry":
        return cls(data["path"], int(data["face"]), data["family"], data["sha256"], Geometry.from_dict(data["geometry"]))


@dataclass(frozen=True)
class Style:
    id: int
    name: str
    font: FontEntry

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, **self.font.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "Style":
        return cls(int(data["id"]), data["name"], FontEntry.from_dict(data))


def manifest_sources(manifest: dict) -> list[dict]:
    """The source font entries of a dataset manifest, the primary first (a one-source dataset
    has only "source")."""
    return manifest.get("sources") or [manifest["source"]]


def split_is_val(codepoint: int, style_id: int, val_fraction: float, seed: int) -> bool:
    """Deterministic per-style split by character: same answer on every machine and run."""
    if val_fraction <= 0:
        return False
    rng = np.random.default_rng([seed, style_id, codepoint])
    return bool(rng.random() < val_fraction)


class GlyphDataset:
    """A dataset folder opened read-only with memory maps."""

    def __init__(self, root: Path):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise FontgenError(f"no dataset at {self.root} (missing manifest.json); run `fontgen render` first")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FontgenError(f"{manifest_path} is not a readable dataset manifest ({exc})") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT or self.manifest.get("version") != VERSION:
            raise FontgenError(f"{manifest_path} is not a {FORMAT} v{VERSION} manifest")
        arrays = {}
        for name, dtype in ARRAYS.items():
            path = self.root / f"{name}.npy"
            try:
                arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise FontgenError(f"dataset array {path} is missing or unreadable ({exc})") from None
            if arrays[name].dtype != dtype:
                raise FontgenError(f"dataset array {path} has dtype {arrays[name].dtype}, expected {np.dtype(dtype)}")
        self.codepoints = arrays["codepoints"]
        self.source = arrays["source"]
        self.images = arrays["images"]
        self.pair_char = arrays["pair_char"]
        self.pair_style = arrays["pair_style"]
        self.pair_split = arrays["pair_split"]
        try:
            self.image_size = int(self.manifest["image_size"])
            self.source_fonts = [FontEntry.from_dict(s) for s in manifest_sources(self.manifest)]
            self.source_font = self.source_fonts[0]
            self.styles = [Style.from_dict(s) for s in self.manifest["styles"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise FontgenError(f"{manifest_path} is damaged ({type(exc).__name__}: {exc}); render the dataset "
                               "again with `fontgen render`") from None
        self._check_arrays()

    def _check_arrays(self) -> None:
        """Shapes and index ranges: a damaged dataset is refused here, not clipped during training."""
        size, chars, pairs = self.image_size, len(self.codepoints), len(self.pair_char)
        problems = []
        if self.source.shape != (self.views * chars, size, size):
            problems.append(f"source.npy is {self.source.shape}, expected ({self.views * chars}, {size}, {size}) "
                            f"for {self.views} source font(s)")
        if self.images.shape != (pairs, size, size):
            problems.append(f"images.npy is {self.images.shape}, expected ({pairs}, {size}, {size})")
        if len(self.pair_style) != pairs or len(self.pair_split) != pairs:
            problems.append(f"pair_style.npy / pair_split.npy hold {len(self.pair_style)} / {len(self.pair_split)} "
                            f"rows, pair_char.npy {pairs}")
        if pairs and not problems:
            pair_char = np.asarray(self.pair_char)
            if pair_char.min() < 0 or pair_char.max() >= chars:
                problems.append(f"pair_char.npy points outside the {chars} characters "
                                f"(values {pair_char.min()}..{pair_char.max()})")
            unknown = sorted(set(np.unique(np.asarray(self.pair_style)).tolist()) - {s.id for s in self.styles})
            if unknown:
                problems.append(f"pair_style.npy has style ids {unknown[:5]} that the manifest does not list")
            if np.asarray(self.pair_split).max() > VAL:
                problems.append("pair_split.npy has values other than 0 (train) and 1 (validation)")
        if problems:
            raise FontgenError(f"dataset at {self.root} is inconsistent: {'; '.join(problems)}; render it again "
                               "with `fontgen render`")

    @property
    def views(self) -> int:
        """Source fonts: drawings of each character's content."""
        return len(self.source_fonts)

    def source_views(self, char_rows) -> np.ndarray:
        """uint8 [V, N, S, S]: each character's glyph in every source font."""
        rows = np.asarray(char_rows)
        return np.stack([self.source[v * len(self.codepoints) + rows] for v in range(self.views)])

    @property
    def embedding_num(self) -> int:
        return max((s.id for s in self.styles), default=-1) + 1

    def style(self, style_id: int) -> Style:
        for style in self.styles:
            if style.id == style_id:
                return style
        raise FontgenError(f"style {style_id} is not in the dataset (styles: {', '.join(str(s.id) for s in self.styles)})")

    def pair_indices(self, split: str = "train") -> np.ndarray:
        """Pair rows of a split: 'train', 'val' or 'all'."""
        if split == "all":
            return np.arange(len(self.pair_char))
        flag = {"train": TRAIN, "val": VAL}[split]
        return np.nonzero(np.asarray(self.pair_split) == flag)[0]

    def chars_of_style(self, style_id: int) -> list[str]:
        """Characters the style's font has (its pairs, train and validation)."""
        rows = np.asarray(self.pair_char)[np.asarray(self.pair_style) == style_id]
        return [chr(int(cp)) for cp in np.asarray(self.codepoints)[rows]]

    def requested_chars(self) -> list[str]:
        """The characters render was asked for (the charset generate completes), in order."""
        charset = self.manifest.get("charset", {})
        if charset.get("requested_chars"):
            return list(charset["requested_chars"])
        try:  # datasets from before the list was stored: the builtin name or file, if it still loads
            return load_charset(charset["name"])
        except (KeyError, FontgenError):
            return [chr(int(cp)) for cp in self.codepoints]

    def __repr__(self) -> str:
        return (f"GlyphDataset({self.root}, {len(self.codepoints)} chars, {len(self.styles)} styles, "
                f"{len(self.pair_char)} pairs, {self.image_size}px)")


def load_dataset(root: Path) -> GlyphDataset:
    return GlyphDataset(root)


class DatasetWriter:
    """Builds a dataset in a temporary sibling folder and renames it into place at the end,
    so an interrupted render never leaves a folder that looks complete."""

    def __init__(self, out: Path, image_size: int, chars: int, pairs: int, views: int = 1):
        self.out = Path(out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(self.out.parent)  # what a killed render left behind
        self.tmp = temp_path(self.out)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        size = (image_size, image_size)
        self.arrays = {
            "codepoints": self._open("codepoints", (chars,)),
            "source": self._open("source", (views * chars, *size)),
            "images": self._open("images", (pairs, *size)),
            "pair_char": self._open("pair_char", (pairs,)),
            "pair_style": self._open("pair_style", (pairs,)),
            "pair_split": self._open("pair_split", (pairs,)),
        }

    def _open(self, name: str, shape: tuple) -> np.memmap:
        return np.lib.format.open_memmap(self.tmp / f"{name}.npy", mode="w+", dtype=ARRAYS[name], shape=shape)

    def __getitem__(self, name: str) -> np.memmap:
        return self.arrays[name]

    def commit(self, manifest: dict) -> None:
        for array in self.arrays.values():
            array.flush()
        self.arrays.clear()
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
            os.replace(self.tmp, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.out)

    def abort(self) -> None:
        self.arrays.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)
