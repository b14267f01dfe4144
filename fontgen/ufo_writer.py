"""UFO output: the traced glyphs for the designer's font editor (`vectorize --ufo OUT.ufo`).

The glyphs are written with ufoLib2 as a UFO 3 source that a font editor (Glyphs, FontLab,
RoboFont, FontForge, Fontra) opens and fontmake builds again: glyph names (uniXXXX),
unicodes, advance width and height, the contours as traced (cubic when the font is CFF,
TrueType quadratic ("qcurve") otherwise, both in the UFO's PostScript direction: outer
contours counter-clockwise), in the em box of the font that was written (its units per em
and vertical placement), with that em box as font info (unitsPerEm, ascender, descender,
typo metrics) and as guidelines (em top, em bottom, baseline, left and right sides).

Every traced glyph is written, also those left out of the font for a poor render-back
IoU: those are the ones to correct, so they carry a red mark colour and their IoU in the
glyph lib (`com.fontgen.renderBackIoU`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fontgen.errors import FontgenError
from fontgen.files import temp_path

LEFT_OUT_MARK = "1,0,0,1"


def _is_ufo(path: Path) -> bool:
    return path.is_dir() and (path / "metainfo.plist").is_file()


def check_ufo_path(path: Path, force: bool = False) -> None:
    """Refuse a --ufo path before tracing: it must be named .ufo and be new, or a UFO (replaced)."""
    path = Path(path)
    if path.suffix.lower() != ".ufo":
        raise FontgenError(f"--ufo {path}: name the UFO folder .ufo")
    if path.exists() and not path.is_dir():
        raise FontgenError(f"--ufo {path} is a file, not a UFO folder; nothing was changed")
    if path.exists() and not _is_ufo(path) and not (force and not any(path.iterdir())):
        raise FontgenError(f"--ufo {path} exists and is not a UFO; nothing was changed. Name a new folder")


def write_ufo(path: Path, traced: dict, geometry, info: dict, family: str, cubic: bool,
              left_out: dict | None = None, force: bool = False) -> Path:
    """Write `traced` (codepoint -> contours in the geometry's font units) as a UFO at `path`.

    `info` is what the font writer returned (units_per_em, em_top, em_bottom, advance): the
    glyphs are placed in that font's em box. Writes a temporary sibling and renames it.
    """
    import ufoLib2
    from fontTools.pens.reverseContourPen import ReverseContourPen
    from ufoLib2.objects import Guideline

    from fontgen.cubic import draw_cubic_contours
    from fontgen.fontwriter import glyph_name_for
    from fontgen.tracing import draw_contours, map_contours

    path = Path(path)
    check_ufo_path(path, force)
    left_out = left_out or {}
    upm = int(info["units_per_em"])
    em_top, em_bottom = float(info["em_top"]), float(info["em_bottom"])
    advance = int(info.get("advance") or upm)
    font = ufoLib2.Font()
    fi = font.info
    fi.familyName, fi.styleName = family, "Regular"
    fi.unitsPerEm = upm
    fi.ascender, fi.descender = round(em_top), round(em_bottom)
    fi.openTypeOS2TypoAscender, fi.openTypeOS2TypoDescender, fi.openTypeOS2TypoLineGap = \
        round(em_top), round(em_bottom), 0
    fi.openTypeHheaAscender, fi.openTypeHheaDescender, fi.openTypeHheaLineGap = round(em_top), round(em_bottom), 0
    fi.openTypeVheaVertTypoAscender, fi.openTypeVheaVertTypoDescender = upm // 2, -(upm - upm // 2)
    fi.versionMajor, fi.versionMinor = 1, 0
    fi.note = "Glyphs drawn by fontgen (Zi2Zi GAN) and traced to outlines; em box as guidelines."
    for g in (Guideline(y=round(em_top), name="em top"), Guideline(y=round(em_bottom), name="em bottom"),
              Guideline(y=0, name="baseline"), Guideline(x=0, name="em left"),
              Guideline(x=advance, name="em right")):
        font.appendGuideline(g)
    order = []
    for cp, contours in traced.items():
        name = glyph_name_for(cp)
        glyph = font.newGlyph(name)
        glyph.unicodes = [cp]
        glyph.width, glyph.height = advance, upm
        mapped = map_contours(contours, geometry, upm, em_bottom)
        if cubic:  # already counter-clockwise outers (PostScript)
            draw_cubic_contours(glyph.getPen(), mapped)
        else:  # TrueType direction: reversed into the UFO's
            draw_contours(ReverseContourPen(glyph.getPen()), mapped)
        if cp in left_out:
            glyph.lib["public.markColor"] = LEFT_OUT_MARK
            glyph.lib["com.fontgen.renderBackIoU"] = round(float(left_out[cp]), 4)
        order.append(name)
    font.lib["public.glyphOrder"] = order
    font.lib["com.fontgen.curves"] = "cubic" if cubic else "quadratic"
    tmp = temp_path(path, suffix=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        font.save(tmp)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path
