"""`fontgen vectorize`: a generated-glyph folder -> outlines -> a verified font.

The step: read the folder (uXXXX.png images and the manifest's geometry, DESIGN.md
"Generated-glyph folder"), apply the review decisions (review.json), trace every image
(fontgen.tracing, in worker processes; fontgen.cubic for CFF), and write the font
(fontgen.fontwriter; fontgen.cff_writer for CFF, fontgen.ufo_writer for --ufo).
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fontgen.errors import FontgenError
from fontgen.files import check_writable, clean_stale_temps
from fontgen.fonts import FontSpec, Geometry, choose_face, open_font

from fontgen.fontwriter import (WEB_FLAVORS, _keep_font, _slug, merge_into_font, verify_font, write_specimen,
                                write_standalone_font, write_text_specimen, written_by_vectorize)
from fontgen.images import load_glyph_image
from fontgen.review import REVIEW_NAME, ReviewCounts, apply_review
from fontgen.tracing import Contour, TraceOptions, kernels_cached, trace_glyph, warm_up

GLYPH_FILE_RE = re.compile(r"^u([0-9A-F]{4,6})\.png$")
AUXILIARY_PNGS = {"contact-sheet.png", "preview.png", "specimen.png"}
AUXILIARY_PAGE_RE = re.compile(r"^(contact-sheet|specimen)-\d+\.png$")  # further pages of those sheets


# ---------------------------------------------------------------------------------------
# Reading a generated-glyph folder


@dataclass
class GlyphFolder:
    path: Path
    geometry: Geometry
    files: dict[int, Path]  # codepoint -> PNG
    family: str
    style_id: int | None
    style_name: str | None
    target_font: str | None
    geometry_source: str  # "manifest" or "command line"
    flagged: set[int] = field(default_factory=set)  # codepoints generate flagged (nearly empty, fragmented)


def geometry_from_options(image_size: int, units_per_em: int, em_top: float | None = None,
                          margin: float = 0.0) -> Geometry:
    """A Geometry built the way Geometry.for_font builds it, from explicit numbers."""
    if units_per_em is None or units_per_em <= 0:
        raise FontgenError("--units-per-em must be a positive integer")
    if margin < 0 or 2 * margin >= image_size:
        raise FontgenError(f"--margin {margin} does not fit a {image_size} px image")
    top = 0.88 * units_per_em if em_top is None else float(em_top)
    scale = (image_size - 2 * margin) / units_per_em
    return Geometry(image_size=image_size, units_per_em=int(units_per_em), scale=scale,
                    origin_x=float(round(margin)), baseline_y=float(round(margin + top * scale)),
                    em_top=top, em_bottom=top - units_per_em, vertical_source="command line")


def _png_header(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise FontgenError(f"{path}: not a PNG image (it is {im.format})")
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FontgenError(f"{path}: not a readable PNG image ({exc.__class__.__name__}: {exc})") from None


def read_glyph_folder(folder: Path, units_per_em: int | None = None, em_top: float | None = None,
                      margin: float | None = None) -> GlyphFolder:
    """Check a generated-glyph folder (DESIGN.md contract) and work out its geometry."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FontgenError(f"glyph folder not found: {folder}")
    manifest = None
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise FontgenError(f"{manifest_path}: not a valid JSON manifest ({exc})") from None
        if manifest.get("format") not in (None, "fontgen-glyphs"):
            raise FontgenError(f"{manifest_path}: format is {manifest.get('format')!r}, expected 'fontgen-glyphs'")
    files: dict[int, Path] = {}
    # only the folder's own uXXXX.png: review.json and the variants/ subfolder (fontgen review) are read
    # by vectorize_folder through fontgen.review.apply_review
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix.lower() != ".png":
            continue
        if p.name in AUXILIARY_PNGS or AUXILIARY_PAGE_RE.match(p.name) or "-specimen" in p.name:
            continue  # generate's contact sheet and the like are not glyphs
        m = GLYPH_FILE_RE.match(p.name)
        if not m:
            raise FontgenError(f"{p}: bad glyph file name; expected uXXXX.png with 4-6 uppercase hex "
                               "digits of the codepoint, e.g. u56FD.png")
        cp = int(m.group(1), 16)
        if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF or cp < 0x20:
            raise FontgenError(f"{p}: U+{cp:04X} is not a character codepoint")
        if cp in files:
            raise FontgenError(f"{p}: U+{cp:04X} is also given by {files[cp].name}")
        files[cp] = p
    if manifest is not None:
        for entry in manifest.get("glyphs") or []:
            name = entry.get("file") if isinstance(entry, dict) else None
            if name and not (folder / name).is_file():
                raise FontgenError(f"{folder / name}: listed in {manifest_path.name} but missing")
            if name and not GLYPH_FILE_RE.match(name):
                raise FontgenError(f"{folder / name}: bad glyph file name in {manifest_path.name}; expected "
                                   "uXXXX.png with 4-6 uppercase hex digits of the codepoint")
    if not files:
        raise FontgenError(f"{folder}: no glyph images (uXXXX.png) in the folder")
    # image sizes: all the same
    sizes = {}
    for cp, p in files.items():
        sizes.setdefault(_png_header(p), p)
        if len(sizes) > 1:
            (s1, p1), (s2, p2) = list(sizes.items())[:2]
            raise FontgenError(f"{p2}: image is {s2[0]}x{s2[1]} px but {p1.name} is {s1[0]}x{s1[1]} px; "
                               "all glyph images must have the same size")
    (w, h), first = next(iter(sizes.items()))
    if w != h:
        raise FontgenError(f"{first}: image is {w}x{h} px; glyph images must be square")
    style = (manifest or {}).get("style") or {}
    if units_per_em is not None:
        geometry = geometry_from_options(w, units_per_em, em_top, margin or 0.0)
        source = "command line"
    elif manifest is not None and manifest.get("geometry"):
        try:
            geometry = Geometry.from_dict(manifest["geometry"])
        except (KeyError, TypeError) as exc:
            raise FontgenError(f"{manifest_path}: geometry is incomplete ({exc}); pass --units-per-em "
                               "(and --em-top, --margin) to give it on the command line") from None
        source = "manifest"
        if geometry.image_size != w:
            raise FontgenError(f"{first}: image is {w}x{h} px but {manifest_path.name} geometry says "
                               f"{geometry.image_size} px")
    else:
        what = f"{manifest_path} has no geometry" if manifest is not None else f"{folder} has no manifest.json"
        raise FontgenError(f"{what}: pass the geometry on the command line with --units-per-em N "
                           "(the UPM of the font the images were drawn for), and optionally --em-top "
                           "(font units, default 0.88 em) and --margin (px, default 0)")
    style_id = style.get("id")
    return GlyphFolder(path=folder, geometry=geometry, files=dict(sorted(files.items())),
                       family=str(style.get("family") or style.get("name") or folder.name),
                       style_id=style_id if isinstance(style_id, int) else None,
                       style_name=style.get("name"), target_font=(manifest or {}).get("target_font"),
                       geometry_source=source, flagged=_flagged(manifest))


def _flagged(manifest: dict | None) -> set[int]:
    glyphs = (manifest or {}).get("glyphs")
    if not isinstance(glyphs, list):
        return set()
    return {int(g["codepoint"]) for g in glyphs if isinstance(g, dict) and g.get("flags") and "codepoint" in g}


# ---------------------------------------------------------------------------------------
# Tracing many glyphs


def _trace_job(args):
    path, geometry_dict, opts, *curves = args
    geometry = Geometry.from_dict(geometry_dict)
    image = load_glyph_image(Path(path), geometry.image_size)
    if curves and curves[0] == "cubic":  # CFF / OpenType-PS output: cubics fitted directly (fontgen.cubic)
        from fontgen.cubic import trace_glyph_cubic

        return trace_glyph_cubic(image, geometry, opts)
    return trace_glyph(image, geometry, opts)
def trace_folder(folder: GlyphFolder, opts: TraceOptions = TraceOptions(), workers: int | None = None,
                 progress: bool = True, log=None, curves: str = "quadratic") -> dict[int, list[Contour]]:
    """Trace every image of a folder (in worker processes), codepoint -> contours
    (TrueType quadratics, or with curves="cubic" cubic Béziers for CFF, see fontgen.cubic)."""
    from tqdm import tqdm

    workers = default_workers() if workers is None else max(1, int(workers))
    if log is not None and not kernels_cached():
        log("vectorize: compiling the tracer (first use only, about a minute; cached after that)")
    warm_up()  # compile (or load the cached kernels) once here, not in every worker
    items = list(folder.files.items())
    jobs = [(str(p), folder.geometry.to_dict(), opts, curves) for _, p in items]
    bar = tqdm(total=len(jobs), desc="tracing", unit="glyph", disable=not progress, leave=False)
    results: dict[int, list[Contour]] = {}
    try:
        if workers == 1 or len(jobs) < 16:
            for (cp, _), job in zip(items, jobs):
                results[cp] = _trace_job(job)
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                chunk = max(1, min(32, len(jobs) // (workers * 4)))
                for (cp, _), contours in zip(items, pool.map(_trace_job, jobs, chunksize=chunk)):
                    results[cp] = contours
                    bar.update(1)
    finally:
        bar.close()
    return results


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


# ---------------------------------------------------------------------------------------
# The whole step


@dataclass
class VectorizeResult:
    font_path: Path
    specimen_path: Path
    glyphs: int
    contours: int
    on_points: int
    off_points: int
    iou_mean: float
    iou_worst: float
    worst_codepoint: int
    skipped: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    geometry_source: str = "manifest"
    seconds: float = 0.0
    left_out: dict[int, float] = field(default_factory=dict)  # codepoint -> render-back IoU below min_iou
    left_out_file: Path | None = None
    min_iou: float = 0.75
    text_specimen_path: Path | None = None  # running text with the font's own glyphs
    review: ReviewCounts | None = None  # the folder's review.json decisions (fontgen review)

    def summary(self) -> str:
        n = max(self.glyphs, 1)
        lines = [
            f"glyphs:    {self.glyphs} traced"
            + (f", {len(self.skipped)} skipped (already in the target; --replace to overwrite)" if self.skipped else ""),
            f"contours:  {self.contours} ({self.contours / n:.1f} per glyph)",
            f"points:    {(self.on_points + self.off_points) / n:.1f} per glyph "
            f"({self.on_points / n:.1f} on-curve, {self.off_points / n:.1f} off-curve)",
            f"fidelity:  IoU mean {self.iou_mean:.4f}, worst {self.iou_worst:.4f} "
            f"({chr(self.worst_codepoint)} U+{self.worst_codepoint:04X})",
            "checks:    fontTools reopen, OpenType Sanitizer, FreeType render-back: passed",
            f"font:      {self.font_path}",
            f"specimen:  {self.specimen_path}"
            + (f"; running text {self.text_specimen_path}" if self.text_specimen_path else ""),
        ]
        if self.review is not None:
            lines.insert(1, f"review:    {self.review.line()}")
        if self.left_out:
            shown = "".join(chr(cp) for cp in list(self.left_out)[:40])
            lines.append(f"left out:  {len(self.left_out)} glyphs whose outline renders back below IoU {self.min_iou}: "
                         f"{shown}{'...' if len(self.left_out) > 40 else ''} (list: {self.left_out_file}); look at "
                         "their images, try --smooth 0 or a lower --min-iou, or --strict to refuse such a font")
        lines += [f"note:      {note}" for note in self.notes]
        return "\n".join(lines)


def default_output(folder: GlyphFolder, fonts_dir: Path, merge_into: FontSpec | None, ext: str = ".ttf") -> Path:
    suffix = f"-fontgen-style-{folder.style_id}" if folder.style_id is not None else "-fontgen"
    base = _slug(merge_into.path.stem) if merge_into is not None else _slug(folder.family)
    return Path(fonts_dir) / f"{base}{suffix}{ext}"


def merged_suffix(target: FontSpec | None, to_truetype: bool = False) -> str:
    """The file suffix a merged font gets by default: .otf for a CFF target that stays CFF."""
    if target is None or to_truetype:
        return ".ttf"
    try:
        return ".otf" if "CFF " in open_font(target) else ".ttf"
    except FontgenError:
        return ".ttf"  # a bad target is reported where it is opened


def vectorize_folder(glyph_dir: Path, out: Path | None = None, merge_into: str | FontSpec | None = None,
                     replace: bool = False, workers: int | None = None, units_per_em: int | None = None,
                     em_top: float | None = None, margin: float | None = None,
                     options: TraceOptions = TraceOptions(), fonts_dir: Path = Path("fontgen-work/fonts"),
                     min_iou: float = 0.75, progress: bool = True, force: bool = False, strict: bool = False,
                     family: str | None = None, accepted_only: bool = False, log=None, to_truetype: bool = False,
                     ufo: Path | None = None) -> VectorizeResult:
    """Trace a generated-glyph folder and write a verified font (standalone or merged).

    The folder's review.json (`fontgen review`) applies: rejected glyphs are left out, a
    chosen alternative (variants/NAME.png) is traced instead of the original, undecided
    glyphs are kept unless `accepted_only`. Glyphs whose outline renders back below
    `min_iou` are left out (listed in the result and in OUT-left-out.txt); `strict`
    refuses the whole font instead. A CFF target stays CFF unless `to_truetype`; a
    standalone `out` named .otf is CFF. `ufo` also writes the traced glyphs as a UFO for a
    font editor (fontgen.ufo_writer).
    """
    start = time.perf_counter()
    folder = read_glyph_folder(Path(glyph_dir), units_per_em, em_top, margin)
    files, review = apply_review(folder.path, folder.files, accepted_only, folder.geometry.image_size)
    if not files:
        why = (f"no glyph of {folder.path} is accepted in its {REVIEW_NAME} (--accepted-only keeps only those)"
               if accepted_only else f"every glyph of {folder.path} is rejected in its {REVIEW_NAME}")
        raise FontgenError(f"nothing to vectorize: {why}; accept some in `fontgen review`"
                           + ("" if not accepted_only else ", or leave out --accepted-only"))
    folder.files = files
    folder.flagged &= set(files)
    target = FontSpec.parse(merge_into) if isinstance(merge_into, (str, Path)) else merge_into
    out = Path(out) if out is not None else default_output(folder, Path(fonts_dir), target,
                                                           merged_suffix(target, to_truetype))
    if target is not None and out.resolve() == target.path.resolve():
        raise FontgenError(f"--out {out} is the --merge-into font itself; vectorize never overwrites its input")
    if out.exists() and out.is_dir():
        raise FontgenError(f"--out {out} is a folder; give a .ttf file path")
    if out.exists() and not force and not written_by_vectorize(out):
        raise FontgenError(f"--out {out} exists and is not a font fontgen wrote; nothing was changed. Name a new "
                           "file, or pass --force to replace it")
    if out.suffix.lower() not in (".ttf", ".otf", *WEB_FLAVORS):
        raise FontgenError(f"--out {out}: name the font .ttf, .otf (CFF outlines) or .woff / .woff2 (a web font)")
    check_writable(out.parent, "the font")  # before tracing, not after it
    clean_stale_temps(out.parent)
    if target is not None:
        target = choose_face(target, [chr(cp) for cp in folder.files], log)
        target_cff = "CFF " in open_font(target)  # fail early on a bad target, before tracing
    # === CFF output (fontgen/cubic.py, fontgen/cff_writer.py): trace cubics, not quadratics ===
    cubic = (target_cff and not to_truetype) if target is not None else out.suffix.lower() == ".otf"
    if ufo is not None:
        from fontgen.ufo_writer import check_ufo_path

        check_ufo_path(Path(ufo), force)
    traced = trace_folder(folder, options, workers, progress, log, curves="cubic" if cubic else "quadratic")
    notes: list[str] = []

    def build(glyphs: dict) -> tuple[dict, list[int], list[int]]:
        if target is None:
            info = write_standalone_font(glyphs, folder.geometry, out, family or folder.family, folder.style_id,
                                         family_given=family is not None)
            return info, list(glyphs), []
        info = merge_into_font(glyphs, folder.geometry, target, out, replace, family, to_truetype=to_truetype)
        if not info["added"]:
            Path(info["tmp"]).unlink(missing_ok=True)
            raise FontgenError(f"{target} already has all {len(info['skipped'])} characters of {folder.path}; "
                               "pass --replace to use the generated glyphs instead")
        return info, info["added"], info["skipped"]

    info, written, skipped = build(traced)
    if out.suffix.lower() == ".otf" and not info.get("cff"):
        notes.append("the font has TrueType outlines; consider naming it .ttf rather than .otf")
    elif out.suffix.lower() == ".ttf" and info.get("cff"):
        notes.append("the font has CFF (PostScript) outlines; consider naming it .otf rather than .ttf "
                     "(--to-truetype converts the whole font to TrueType outlines instead)")
    elif out.suffix.lower() in WEB_FLAVORS:
        notes.append(f"written as {WEB_FLAVORS[out.suffix.lower()].upper()} (a web font), as its name asks")
    left_out: dict[int, float] = {}
    tmp = Path(info["tmp"])
    try:
        check = verify_font(tmp, {cp: folder.files[cp] for cp in written}, folder.geometry, min_iou, progress)
        if check["below"]:
            left_out = dict(sorted(check["below"].items(), key=lambda kv: kv[1]))
            worst_cp = next(iter(left_out))
            if strict or len(left_out) == len(written):
                raise FontgenError(
                    f"verification failed: {len(left_out)} of {len(written)} glyphs render back below --min-iou "
                    f"{min_iou}, worst {chr(worst_cp)} (U+{worst_cp:04X}, {folder.files[worst_cp].name}) with IoU "
                    f"{left_out[worst_cp]:.3f}; nothing was written. Look at those images, try --smooth 0, or "
                    "lower --min-iou")
            tmp.unlink(missing_ok=True)
            info, written, skipped = build({cp: c for cp, c in traced.items() if cp not in left_out})
            tmp = Path(info["tmp"])
            check = verify_font(tmp, {cp: folder.files[cp] for cp in written}, folder.geometry, min_iou, progress)
        if target is not None and info.get("cff"):  # the font's own charstrings: byte for byte the same
            from fontgen.cff_writer import check_charstrings_unchanged

            kept = check_charstrings_unchanged(target, tmp)
            notes.append(f"CFF kept: the new glyphs are Type 2 charstrings (cubic curves, unhinted); the font's "
                         f"own {kept} charstrings, subroutines and font dicts are byte for byte unchanged")
        specimen = out.with_name(out.stem + "-specimen.png")
        write_specimen(tmp, written, specimen, first=folder.flagged)
        own = None
        if target is None and folder.target_font and FontSpec.parse(folder.target_font).path.is_file():
            own = FontSpec.parse(folder.target_font)
        text_specimen = write_text_specimen(tmp, written, out.with_name(out.stem + "-text.png"),
                                            own_font=own if target is None else None)
        _keep_font(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    notes += info.get("notes", [])
    left_out_file = out.with_name(out.stem + "-left-out.txt")
    if left_out:
        lines = [f"{chr(cp)}\tU+{cp:04X}\t{folder.files[cp].name}\tIoU {iou:.3f}" for cp, iou in left_out.items()]
        left_out_file.write_text(f"# glyphs left out of {out.name}: their outline renders back with IoU below "
                                 f"--min-iou {min_iou} against the image\n" + "\n".join(lines) + "\n",
                                 encoding="utf-8")
    else:
        left_out_file.unlink(missing_ok=True)  # an older run's list no longer applies
    from fontTools.ttLib import TTFont

    font = TTFont(str(out))
    cmap = font.getBestCmap()
    contours = on = off = 0
    if "glyf" not in font:  # CFF outlines
        from fontgen.cff_writer import outline_point_counts

        contours, on, off = outline_point_counts(font, [cmap[cp] for cp in written])
    glyf = font["glyf"] if "glyf" in font else {}
    for cp in (written if "glyf" in font else []):
        g = glyf[cmap[cp]]
        if g.numberOfContours > 0:
            contours += g.numberOfContours
            flags = np.asarray(g.flags)
            on += int((flags & 1).sum())
            off += int(len(flags) - (flags & 1).sum())
    ufo_path = None
    if ufo is not None:  # === the traced glyphs for a font editor (fontgen/ufo_writer.py) ===
        from fontgen.ufo_writer import write_ufo

        ufo_path = write_ufo(Path(ufo), traced, folder.geometry, info, family=font["name"].getDebugName(1) or
                             folder.family, cubic=cubic, left_out=left_out, force=force)
        notes.append(f"UFO for a font editor: {ufo_path} ({len(traced)} glyphs, "
                     f"{'cubic' if cubic else 'quadratic'} contours)")
    return VectorizeResult(font_path=out, specimen_path=specimen, glyphs=len(written), contours=contours,
                           on_points=on, off_points=off, iou_mean=check["iou_mean"], iou_worst=check["iou_worst"],
                           worst_codepoint=check["worst_codepoint"], skipped=skipped, notes=notes,
                           geometry_source=folder.geometry_source, seconds=time.perf_counter() - start,
                           left_out=left_out, left_out_file=left_out_file if left_out else None, min_iou=min_iou,
                           text_specimen_path=text_specimen, review=review)
