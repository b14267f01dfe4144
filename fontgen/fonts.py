"""Fonts: opening faces, em-box glyph geometry, coverage and rasterisation.

Every step that turns a font into pixels or pixels back into a font goes through this
module, so training, generation, evaluation and vectorization share one geometry.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTCollection, TTFont, TTLibError
from PIL import Image, ImageDraw, ImageFont

from fontgen.errors import FontgenError


class FontError(FontgenError):
    """A font file that cannot be used, with a message meant for the user."""


@dataclass(frozen=True)
class FontSpec:
    """A face inside a font file: `path` or `path#N` for face N of a collection."""

    path: Path
    face: int = 0
    face_given: bool = field(default=True, compare=False)  # False: no #N was written (see choose_face)

    @classmethod
    def parse(cls, text: str | Path) -> "FontSpec":
        text = str(text)
        path, sep, face = text.rpartition("#")
        if sep and face.isdigit():
            return cls(Path(path), int(face))
        return cls(Path(text), 0, face_given=False)

    def __str__(self) -> str:
        return f"{self.path}#{self.face}" if self.face else str(self.path)


def open_font(spec: FontSpec, lazy: bool = True) -> TTFont:
    """Open one face with fontTools, turning every failure into a FontError."""
    if not spec.path.is_file():
        raise FontError(f"font not found: {spec.path}")
    try:
        with open(spec.path, "rb") as fh:
            is_collection = fh.read(4) == b"ttcf"
        if is_collection:
            count = len(TTCollection(str(spec.path), lazy=True).fonts)
            if not 0 <= spec.face < count:
                raise FontError(f"{spec.path} has {count} faces (0..{count - 1}); face {spec.face} does not exist")
        elif spec.face != 0:
            raise FontError(f"{spec.path} is not a font collection; face {spec.face} does not exist")
        font = TTFont(str(spec.path), fontNumber=spec.face if is_collection else -1, lazy=lazy)
        font["head"], font.getBestCmap()
    except FontError:
        raise
    except ImportError as exc:  # WOFF2 needs brotli (a dependency; a broken install lacks it)
        raise FontError(f"{spec.path} is a WOFF2 font, which needs the brotli package ({exc}); "
                        "reinstall fontgen (pip install brotli)") from None
    except (TTLibError, KeyError, AssertionError, ValueError, EOFError, OSError) as exc:
        raise FontError(f"{spec.path} is not a usable TrueType/OpenType font ({exc})") from None
    if font.getBestCmap() is None:
        raise FontError(f"{spec} has no Unicode cmap")
    return font


# Regions of CJK faces: the words a family name ends with, and Windows name-table languages.
REGION_WORDS = {"zh-Hans": {"SC", "CN", "GB", "Simplified"}, "zh-Hant": {"TC", "TW", "Traditional"},
                "zh-HK": {"HK"}, "ja": {"JP", "Japanese"}, "ko": {"KR", "Korean"}}
REGION_LANGS = {0x804: "zh-Hans", 0x1004: "zh-Hans", 0x404: "zh-Hant", 0x1404: "zh-Hant", 0xC04: "zh-HK",
                0x411: "ja", 0x412: "ko"}
CHARSET_REGIONS = (("zh-Hans", "gb2312"), ("zh-Hant", "big5"), ("ja", "euc_jp"), ("ko", "euc_kr"))


def face_region(font: TTFont) -> str | None:
    """The region a CJK face is drawn for (SC, TC, HK, JP, KR), from its name; None if it does not say."""
    words = family_name(font).replace("-", " ").split()
    for region, tags in REGION_WORDS.items():
        if words and words[-1] in tags:
            return region
    langs = {REGION_LANGS.get(r.langID) for r in font["name"].names if r.platformID == 3} - {None}
    return langs.pop() if len(langs) == 1 else None


def charset_region(chars) -> str | None:
    """The region whose legacy encoding covers the most of `chars` (GB2312 first on ties)."""
    chars = list(chars)
    if not chars:
        return None

    def covered(codec: str) -> int:
        count = 0
        for ch in chars:
            try:
                ch.encode(codec)
                count += 1
            except UnicodeEncodeError:
                pass
        return count

    counts = [(covered(codec), -i, region) for i, (region, codec) in enumerate(CHARSET_REGIONS)]
    best = max(counts)
    return best[2] if best[0] >= 0.5 * len(chars) else None


def collection_faces(spec: FontSpec) -> list[tuple[int, str, str | None]]:
    """(index, family, region) of each face of a collection named without #N; [] for a face named
    with #N, a single font, a collection of one, or a file that cannot be read (open_font says why)."""
    if spec.face_given or not spec.path.is_file():
        return []
    with open(spec.path, "rb") as fh:
        if fh.read(4) != b"ttcf":
            return []
    try:
        faces = TTCollection(str(spec.path), lazy=True).fonts
        described = [(i, family_name(f), face_region(f)) for i, f in enumerate(faces)]
    except Exception:  # noqa: BLE001 - open_font says what is wrong with it later
        return []
    return described if len(described) > 1 else []


def describe_choice(spec: FontSpec, faces, index: int, why: str) -> str:
    """The line that says which face of a collection is used, why, and how to choose another."""
    label = {i: f"#{i} {family}{f' ({region})' if region else ''}" for i, family, region in faces}
    others = ", ".join(text for i, text in label.items() if i != index)
    return (f"{spec.path} is a collection of {len(faces)} faces; using {label[index]}{why}. Others: {others}; "
            f"write {spec.path}#N to choose")


def choose_face(spec: FontSpec, chars, log=None) -> FontSpec:
    """For a collection named without #N: the face drawn for the charset's region, said aloud.

    Noto Sans CJK's face 0 is Japanese; a GB2312 user wants its Simplified Chinese face.
    Exact region first, then a face that names no region, then face 0.
    """
    faces = collection_faces(spec)
    if not faces:
        return spec
    wanted = charset_region(chars)
    rank = {wanted: 0, None: 1}
    index = min(faces, key=lambda d: (rank.get(d[2], 2), d[0]))[0]
    if log is not None:
        log(describe_choice(spec, faces, index, f" for the {wanted} characters" if wanted else ""))
    return FontSpec(spec.path, index)


def family_name(font: TTFont) -> str:
    name = font["name"]
    for name_id in (16, 1):
        value = name.getDebugName(name_id)
        if value:
            return value
    return "Unknown"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------
# Geometry


def em_box_vertical(font: TTFont) -> tuple[float, float, str]:
    """Top and bottom of the ideographic em box in font units, and where they came from.

    Order of preference (DESIGN.md): the ideographic baseline of BASE, the OS/2 typo
    metrics normalised to one em, then the conventional 0.88 / -0.12 em.
    """
    upm = font["head"].unitsPerEm
    ideo = _base_ideographic_bottom(font)
    if ideo is not None:
        return ideo + upm, float(ideo), "BASE ideo"
    os2 = font.get("OS/2")
    if os2 is not None and os2.sTypoAscender - os2.sTypoDescender > 0:
        ascent, descent = os2.sTypoAscender, os2.sTypoDescender
        top = upm * ascent / (ascent - descent)
        return top, top - upm, "OS/2 typo"
    return 0.88 * upm, -0.12 * upm, "default 0.88/-0.12 em"


def _base_ideographic_bottom(font: TTFont) -> float | None:
    if "BASE" not in font:
        return None
    axis = getattr(font["BASE"].table, "HorizAxis", None)
    if axis is None or axis.BaseTagList is None or axis.BaseScriptList is None:
        return None
    tags = list(axis.BaseTagList.BaselineTag)
    if "ideo" not in tags:
        return None
    index = tags.index("ideo")
    records = {r.BaseScriptTag: r.BaseScript for r in axis.BaseScriptList.BaseScriptRecord}
    for script in ("hani", "kana", "hang", "DFLT"):
        values = getattr(records.get(script), "BaseValues", None)
        if values is not None and index < len(values.BaseCoord):
            return float(values.BaseCoord[index].Coordinate)
    return None


@dataclass(frozen=True)
class Geometry:
    """The font-units -> pixel transform of one font, the same for each of its glyphs.

    x_px = origin_x + x * scale,  y_px = baseline_y - y * scale  (pixel edges, y down).
    The origin sits on whole pixels because FreeType (through Pillow) places glyphs on
    whole pixels; recording the placed origin keeps the transform exact.
    """

    image_size: int
    units_per_em: int
    scale: float  # pixels per font unit
    origin_x: float  # pixel x of the glyph origin
    baseline_y: float  # pixel y of the baseline
    em_top: float  # font units, for reference
    em_bottom: float
    vertical_source: str

    @classmethod
    def for_font(cls, font: TTFont, image_size: int, margin: float = 0.0) -> "Geometry":
        upm = font["head"].unitsPerEm
        top, bottom, source = em_box_vertical(font)
        scale = (image_size - 2 * margin) / upm
        return cls(
            image_size=image_size,
            units_per_em=upm,
            scale=scale,
            origin_x=float(round(margin)),
            baseline_y=float(round(margin + top * scale)),
            em_top=float(top),
            em_bottom=float(bottom),
            vertical_source=source,
        )

    def resized(self, image_size: int) -> "Geometry":
        """The same em box on a canvas resampled to `image_size` (pixel edges scale linearly)."""
        f = image_size / self.image_size
        return Geometry(image_size, self.units_per_em, self.scale * f, self.origin_x * f, self.baseline_y * f,
                        self.em_top, self.em_bottom, self.vertical_source)

    def to_pixels(self, x, y):
        return self.origin_x + np.asarray(x) * self.scale, self.baseline_y - np.asarray(y) * self.scale

    def to_font_units(self, x_px, y_px):
        return (np.asarray(x_px) - self.origin_x) / self.scale, (self.baseline_y - np.asarray(y_px)) / self.scale

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Geometry":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


# ---------------------------------------------------------------------------------------
# Coverage


class _Inked(Exception):
    pass


class _InkPen(BasePen):
    """Stops at the first segment drawn: whether a glyph has ink, without running all of it."""

    def _moveTo(self, pt):
        pass

    def _lineTo(self, pt):
        raise _Inked

    def _curveToOne(self, pt1, pt2, pt3):
        raise _Inked

    def _qCurveToOne(self, pt1, pt2):
        raise _Inked


def has_ink(font: TTFont, glyph_name: str, glyph_set=None) -> bool:
    """Whether a glyph draws anything. Simple TrueType glyphs answer from their header alone."""
    glyf = font["glyf"] if "glyf" in font else None
    if glyf is not None:
        glyph = glyf.glyphs.get(glyph_name)
        data = getattr(glyph, "data", None)
        if data is not None and len(data) < 2:
            return False
        if data is not None and struct.unpack(">h", data[:2])[0] > 0:
            return True  # contours always carry points
    glyph_set = glyph_set if glyph_set is not None else font.getGlyphSet()
    try:
        glyph_set[glyph_name].draw(_InkPen(glyph_set))
    except _Inked:
        return True
    return False


@dataclass
class Coverage:
    present: list[str]
    missing: dict[str, str]  # char -> reason

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for reason in self.missing.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        parts = [f"{n} {r}" for r, n in sorted(reasons.items())]
        return f"{len(self.present)} present" + (f", skipped {', '.join(parts)}" if parts else "")


# A glyph shared by more characters than this (or an identical rendering shared this
# often) is a placeholder: a tofu box or a "missing" mark, never a real ideograph.
PLACEHOLDER_SHARE = 4
# Identical renderings are found on small images: placeholders differ from real glyphs at any size.
PLACEHOLDER_CHECK_SIZE = 48


def coverage(font: TTFont, chars, renderer: "GlyphRenderer | None" = None) -> Coverage:
    """Which of `chars` the font really has (DESIGN.md "Missing glyphs").

    Present means: the cmap maps it to a glyph that is not .notdef, has an outline, and is
    not a placeholder (one glyph, or one identical rendering, standing for many unrelated
    characters). Identical renderings are checked when a renderer is given.
    """
    cmap = font.getBestCmap()
    glyph_set = font.getGlyphSet()
    missing: dict[str, str] = {}
    mapped: dict[str, str] = {}
    for ch in chars:
        name = cmap.get(ord(ch))
        if name is None:
            missing[ch] = "not in cmap"
        elif name == ".notdef" or font.getGlyphID(name) == 0:
            missing[ch] = ".notdef"
        elif name not in glyph_set:
            missing[ch] = "glyph not in font"
        else:
            mapped[ch] = name
    ink: dict[str, bool] = {}
    for name in set(mapped.values()):
        ink[name] = has_ink(font, name, glyph_set)
    users: dict[str, int] = {}
    for name in mapped.values():
        users[name] = users.get(name, 0) + 1
    candidates = []
    for ch, name in mapped.items():
        if not ink[name]:
            missing[ch] = "empty outline"
        elif users[name] > PLACEHOLDER_SHARE:
            missing[ch] = "shared placeholder glyph"
        else:
            candidates.append(ch)
    if renderer is not None and len(candidates) > PLACEHOLDER_SHARE:
        by_pixels: dict[bytes, list[str]] = {}
        for ch in candidates:
            key = hashlib.blake2b(renderer.render(ch).tobytes(), digest_size=16).digest()
            by_pixels.setdefault(key, []).append(ch)
        for group in by_pixels.values():
            if len(group) > PLACEHOLDER_SHARE:
                for ch in group:
                    missing[ch] = "placeholder rendering"
    present = [ch for ch in chars if ch not in missing]
    return Coverage(present=present, missing={ch: missing[ch] for ch in chars if ch in missing})


def coverage_of(spec: FontSpec, chars, margin: float = 0.0) -> Coverage:
    """`coverage` of a face, opened here, with identical renderings compared on small images."""
    font = open_font(spec)
    return coverage(font, chars, GlyphRenderer(spec, Geometry.for_font(font, PLACEHOLDER_CHECK_SIZE, margin)))


# ---------------------------------------------------------------------------------------
# Rasterisation


class GlyphRenderer:
    """Draws characters of one face in its em-box geometry: 8-bit, black ink on white."""

    def __init__(self, spec: FontSpec, geometry: Geometry):
        self.spec = spec
        self.geometry = geometry
        ppem = geometry.scale * geometry.units_per_em
        try:
            self.font = ImageFont.truetype(str(spec.path), size=ppem, index=spec.face,
                                           layout_engine=ImageFont.Layout.BASIC)
        except OSError as exc:
            raise FontError(f"FreeType cannot open {spec}: {exc}") from None

    def render(self, ch: str) -> np.ndarray:
        size = self.geometry.image_size
        image = Image.new("L", (size, size), 255)
        ImageDraw.Draw(image).text((self.geometry.origin_x, self.geometry.baseline_y), ch,
                                   font=self.font, fill=0, anchor="ls")
        return np.asarray(image)


def render_views(renderers: list[GlyphRenderer], chars, progress: bool = False, desc: str = "render") -> np.ndarray:
    """uint8 [V, N, S, S]: each character in every source font (renderers of one image size, the
    primary first); where another source lacks the character, the primary's glyph stands in, as
    render stores them in a dataset."""
    from tqdm import tqdm

    has = [None] + [set(coverage_of(r.spec, chars).present) for r in renderers[1:]]
    size = renderers[0].geometry.image_size
    views = np.empty((len(renderers), len(chars), size, size), dtype=np.uint8)
    for i, ch in enumerate(tqdm(chars, unit="glyph", desc=desc, disable=not progress, dynamic_ncols=True)):
        views[0, i] = renderers[0].render(ch)
        for v in range(1, len(renderers)):
            views[v, i] = renderers[v].render(ch) if ch in has[v] else views[0, i]
    return views


def renderer_for(spec: FontSpec, image_size: int, margin: float = 0.0) -> GlyphRenderer:
    font = open_font(spec)
    return GlyphRenderer(spec, Geometry.for_font(font, image_size, margin))
