"""Font writing: traced contours -> a font file, checked.

What it owns: a standalone TrueType font of the traced glyphs, a copy of the designer's
font with the glyphs added (its names changed to "<Family> fontgen", everything else
kept; CFF targets are handled by fontgen.cff_writer), verification of what was written
(fontTools reopen, OpenType Sanitizer, FreeType render-back against the images), and the
pictures beside the font (specimen pages, running text mixing own and generated glyphs).
"""

from __future__ import annotations

import math
import os
import re
import time
from pathlib import Path

import numpy as np

from fontgen.errors import FontgenError
from fontgen.files import temp_path
from fontgen.fonts import FontSpec, Geometry, GlyphRenderer, coverage_of, em_box_vertical, open_font
from fontgen.images import load_glyph_image
from fontgen.tracing import Contour, contours_to_glyph, ink_iou, map_contours

MAX_GLYPHS = 65535




def glyph_name_for(cp: int) -> str:
    return f"uni{cp:04X}" if cp <= 0xFFFF else f"u{cp:05X}"


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return s or "font"


def _ps_name(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9-]", "", text.replace(" ", ""))
    return (s or "fontgen")[:63]


def _notdef_glyph(upm: int, em_top: float, em_bottom: float):
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    pen = TTGlyphPen(None)
    m = round(upm * 0.1)
    stroke = round(upm * 0.05)
    x0, x1, y0, y1 = m, upm - m, round(em_bottom) + m, round(em_top) - m
    for (a, b, c, d), clockwise in (((x0, y0, x1, y1), True), ((x0 + stroke, y0 + stroke, x1 - stroke, y1 - stroke), False)):
        pts = [(a, b), (a, d), (c, d), (c, b)] if clockwise else [(a, b), (c, b), (c, d), (a, d)]
        pen.moveTo(pts[0])
        for p in pts[1:]:
            pen.lineTo(p)
        pen.closePath()
    return pen.glyph()


def _build_cmap(mapping: dict[int, str]):
    from fontTools.ttLib import newTable
    from fontTools.ttLib.tables._c_m_a_p import CmapSubtable

    cmap = newTable("cmap")
    cmap.tableVersion = 0
    bmp = {cp: g for cp, g in mapping.items() if cp <= 0xFFFF}
    tables = []
    for fmt, pid, eid, table in ((4, 0, 3, bmp), (4, 3, 1, bmp), (12, 0, 4, mapping), (12, 3, 10, mapping)):
        sub = CmapSubtable.newSubtable(fmt)
        sub.platformID, sub.platEncID, sub.language = pid, eid, 0
        sub.cmap = dict(table)
        tables.append(sub)
    cmap.tables = tables
    return cmap


def _set_bit(value: int, bit: int) -> int:
    return value | (1 << bit)


def write_standalone_font(glyphs: dict[int, list[Contour]], geometry: Geometry, out_path: Path,
                          family: str, style_id: int | None = None, units_per_em: int = 1000,
                          family_given: bool = False) -> dict:
    """Write a new TTF holding only the traced glyphs (CJK metrics, UPM `units_per_em`).

    `glyphs` maps codepoints to contours in the geometry's font units. An `out_path`
    named .otf gets CFF outlines (`glyphs` then holds cubic contours, see fontgen.cubic
    and fontgen.cff_writer), any other name glyf outlines. Writes to a
    temporary file next to `out_path` and returns {"tmp": path, ...}; the caller verifies
    and moves it in place (see `vectorize_folder`).
    """
    from fontTools.fontBuilder import FontBuilder
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    upm = int(units_per_em)
    k = upm / geometry.units_per_em
    em_top = round(geometry.em_top * k)
    em_bottom = em_top - upm
    order = [".notdef"] + [glyph_name_for(cp) for cp in glyphs]
    fam = family if family_given else f"{family} fontgen"
    ps_family = _ps_name(_ascii(fam) or "fontgen")
    if style_id is not None and not family_given:
        ps_family = _ps_name(f"{ps_family}-style{style_id}")
    cff = Path(out_path).suffix.lower() == ".otf"
    fb = FontBuilder(upm, isTTF=not cff)
    fb.setupGlyphOrder(order)
    fb.font["cmap"] = _build_cmap({cp: glyph_name_for(cp) for cp in glyphs})
    if cff:  # === OpenType/CFF output (fontgen/cff_writer.py) ===
        from fontgen.cff_writer import setup_standalone_cff

        bounds = setup_standalone_cff(
            fb, {glyph_name_for(cp): map_contours(c, geometry, upm, em_bottom) for cp, c in glyphs.items()},
            upm, em_top, em_bottom, f"{ps_family}-Regular"[:63], f"{fam} Regular", fam)
    else:
        glyf = {".notdef": _notdef_glyph(upm, em_top, em_bottom)}
        for cp, contours in glyphs.items():
            mapped = map_contours(contours, geometry, upm, em_bottom)
            glyf[glyph_name_for(cp)] = contours_to_glyph(mapped) if mapped else Glyph()
        fb.setupGlyf(glyf)
        glyf_table = fb.font["glyf"]
        bounds = {g: (glyf_table[g].xMin, glyf_table[g].yMin, glyf_table[g].xMax, glyf_table[g].yMax)
                  if glyf_table[g].numberOfContours else None for g in order}
    y_max = max([b[3] for b in bounds.values() if b] + [em_top])
    y_min = min([b[1] for b in bounds.values() if b] + [em_bottom])
    metrics, vmetrics = {}, {}
    for g in order:
        b = bounds[g]
        metrics[g] = (upm, b[0] if b else 0)
        vmetrics[g] = (upm, em_top - b[3] if b else 0)
    fb.setupHorizontalMetrics(metrics)
    win_ascent = max(int(math.ceil(y_max)), em_top + round(0.15 * upm))
    win_descent = max(int(math.ceil(-y_min)), -em_bottom + round(0.15 * upm))
    fb.setupHorizontalHeader(ascent=win_ascent, descent=-win_descent, lineGap=0)
    fb.setupVerticalMetrics(vmetrics)
    fb.setupVerticalHeader(ascent=upm // 2, descent=-(upm - upm // 2), lineGap=0)
    fb.setupNameTable({
        "familyName": fam,
        "styleName": "Regular",
        "uniqueFontIdentifier": f"fontgen:{ps_family}-Regular:{time.strftime('%Y%m%d')}",
        "fullName": f"{fam} Regular",
        "psName": f"{ps_family}-Regular"[:63],
        "version": f"Version 1.000; {FONTGEN_MARK}",
        "description": "Glyphs drawn by fontgen (Zi2Zi GAN) and traced to outlines",
    })
    fb.setupOS2(
        version=4, achVendID="NONE", usWeightClass=400, usWidthClass=5, fsType=0,
        fsSelection=0x40,  # REGULAR
        sTypoAscender=em_top, sTypoDescender=em_bottom, sTypoLineGap=0,
        usWinAscent=win_ascent, usWinDescent=win_descent,
        sxHeight=round(0.5 * upm), sCapHeight=em_top,
        usDefaultChar=0, usBreakChar=0x20 if 0x20 in glyphs else min(glyphs), usMaxContext=0,
        ulCodePageRange1=0, ulCodePageRange2=0,
    )
    fb.setupPost(keepGlyphNames=False)
    fb.setupMaxp()
    _finish_os2(fb.font)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(out_path)
    fb.font.save(str(tmp))
    return {"tmp": tmp, "em_top": em_top, "em_bottom": em_bottom, "units_per_em": upm, "advance": upm,
            "cff": cff}


def _ascii(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


def _finish_os2(font) -> None:
    os2 = font["OS/2"]
    os2.recalcUnicodeRanges(font)
    os2.ulUnicodeRange2 = _set_bit(os2.ulUnicodeRange2, 59 - 32)  # CJK Unified Ideographs
    try:
        os2.recalcCodePageRanges(font)
    except Exception:  # noqa: BLE001 - older fontTools
        pass
    os2.ulCodePageRange1 = _set_bit(os2.ulCodePageRange1, 18)  # Chinese: Simplified (PRC, cp936)
    os2.recalcAvgCharWidth(font)


def _tmp_path(out_path: Path) -> Path:
    """The font's temporary sibling (mode from the umask, like any file the user writes)."""
    return temp_path(Path(out_path).with_suffix(".ttf"), suffix=True)


IDEOGRAPH_REFERENCES = "国一永口中"
FONTGEN_MARK = "fontgen"  # in the version string (name ID 5) of every font vectorize writes
WEB_FLAVORS = {".woff": "woff", ".woff2": "woff2"}


def _record_fontgen(font) -> None:
    """Say in the name table that fontgen added glyphs (and let vectorize recognise its own files)."""
    from fontgen import __version__

    name = font["name"] if "name" in font else None
    if name is None:
        return
    for record in list(name.names):
        if record.nameID == 5 and FONTGEN_MARK not in record.toUnicode():
            record.string = f"{record.toUnicode()}; {FONTGEN_MARK} {__version__}"
    if not name.getDebugName(5):
        name.setName(f"Version 1.000; {FONTGEN_MARK} {__version__}", 5, 3, 1, 0x409)
    description = name.getDebugName(10)
    note = "Glyphs added by fontgen (Zi2Zi GAN, traced to outlines)."
    name.setName(f"{description} {note}" if description else note, 10, 3, 1, 0x409)


def rename_family(font, family: str | None = None) -> tuple[str, str]:
    """Give a merged font its own names: the family becomes `family` (default "<Family> fontgen").

    A modified font under the original name clashes with the installed original, and many
    CJK fonts' licences (OFL Reserved Font Names, the IPA licence) forbid it. Family, full,
    PostScript and unique names change in every language; copyright, licence and
    trademark entries stay. Returns (old family, new family).
    """
    from fontgen.fonts import family_name

    name = font["name"]
    old = family_name(font)
    new = family or f"{old} {FONTGEN_MARK}"
    subfamily = name.getDebugName(17) or name.getDebugName(2) or "Regular"
    ps = _ps_name(f"{_ascii(new) or 'Fontgen'}-{_ascii(subfamily) or 'Regular'}")[:63]
    for record in name.names:
        text = record.toUnicode()
        if record.nameID in (1, 16, 21):  # family, typographic family, WWS family: per language
            record.string = family or f"{text} {FONTGEN_MARK}"
        elif record.nameID == 4:  # full name: the family plus the style, unless Regular
            sub = (name.getName(17, record.platformID, record.platEncID, record.langID)
                   or name.getName(2, record.platformID, record.platEncID, record.langID))
            sub = str(sub) if sub else ""
            if family:
                record.string = family if sub in ("", "Regular") else f"{family} {sub}"
            else:
                record.string = _insert_mark(text, sub)
        elif record.nameID in (6, 20):
            record.string = ps
        elif record.nameID == 3:
            record.string = f"{FONTGEN_MARK}:{ps}:{time.strftime('%Y%m%d')}"
    if "CFF " in font:
        font["CFF "].cff.fontNames = [ps]
    return old, new


def _insert_mark(full: str, sub: str) -> str:
    """"Noto Serif CJK SC Bold" -> "Noto Serif CJK SC fontgen Bold"."""
    if sub and sub != "Regular" and full.endswith(" " + sub):
        return f"{full[: -len(sub) - 1]} {FONTGEN_MARK} {sub}"
    if full.endswith(" Regular"):
        return f"{full[: -len(' Regular')]} {FONTGEN_MARK}"
    return f"{full} {FONTGEN_MARK}"


def written_by_vectorize(path: Path) -> bool:
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(str(path), lazy=True, fontNumber=0)
        return FONTGEN_MARK in (font["name"].getDebugName(5) or "")
    except Exception:  # noqa: BLE001 - not a font at all: not ours
        return False


def _keep_font(tmp: Path, out: Path) -> None:
    """Move the verified font into place, as the web flavour the output name asks for, if any."""
    flavor = WEB_FLAVORS.get(out.suffix.lower())
    if flavor:
        from fontTools.ttLib import TTFont

        font = TTFont(str(tmp))
        font.flavor = flavor
        web = temp_path(out, suffix=True)
        try:
            font.save(str(web))
            os.replace(web, out)
        finally:
            web.unlink(missing_ok=True)
    else:
        os.replace(tmp, out)


def _cff_to_glyf(font, notes: list[str]) -> None:
    """Replace the CFF outlines of `font` by TrueType quadratic glyf outlines, in place."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    upm = font["head"].unitsPerEm
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    vorg = font["VORG"] if "VORG" in font else None
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(None)
        glyph_set[name].draw(Cu2QuPen(pen, max_err=upm / 1000, reverse_direction=True))
        glyphs[name] = pen.glyph()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = glyphs
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    for name in order:
        glyphs[name].recalcBounds(glyf)
    hmtx = font["hmtx"]
    for name in order:
        g = glyphs[name]
        adv, _ = hmtx[name]
        hmtx[name] = (adv, g.xMin if g.numberOfContours else 0)
    if "vmtx" in font:
        vmtx = font["vmtx"]
        for name in order:
            g = glyphs[name]
            adv, tsb = vmtx[name]
            if vorg is not None and g.numberOfContours:
                origin = vorg.VOriginRecords.get(name, vorg.defaultVertOriginY)
                tsb = origin - g.yMax
            vmtx[name] = (adv, tsb)
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    font.sfntVersion = "\x00\x01\x00\x00"
    head = font["head"]
    head.glyphDataFormat = 0
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements", "maxComponentDepth",
                 "maxPoints", "maxContours", "maxCompositePoints", "maxCompositeContours"):
        setattr(maxp, attr, 1 if attr == "maxZones" else 0)
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    notes.append("the target has CFF (PostScript) outlines: they were converted to TrueType quadratic "
                 "outlines (cu2qu, max error 1/1000 em) and the merged font is written as a .ttf")


def merge_into_font(glyphs: dict[int, list[Contour]], geometry: Geometry, target: FontSpec, out_path: Path,
                    replace: bool = False, family: str | None = None, to_truetype: bool = False) -> dict:
    """Write a copy of `target` plus the traced glyphs (scaled to its UPM and em box).

    A CFF target stays CFF (`glyphs` then holds cubic contours; fontgen.cff_writer adds them
    as Type 2 charstrings and leaves the font's own untouched); `to_truetype` converts its
    every outline to glyf instead (and `glyphs` holds quadratic contours).
    Existing glyphs and their metrics are kept; a codepoint the target already maps is
    skipped unless `replace` (then the cmap points to the new glyph, the old one stays for
    anything else that references it). Returns {"tmp": path, "added": [...], "skipped": [...],
    "notes": [...]}; the caller verifies and moves the file in place.
    """
    from fontTools.ttLib.tables._c_m_a_p import CmapSubtable

    font = open_font(target, lazy=False)
    notes: list[str] = []
    if font.flavor:
        notes.append(f"the target is {font.flavor.upper()}; the font is written as the output name asks "
                     "(.woff / .woff2 for a web font, else plain OpenType)")
        font.flavor = None  # verified as plain sfnt; the web flavour is applied when the file is kept
    _record_fontgen(font)
    old_family, new_family = rename_family(font, family)
    licence = font["name"].getDebugName(13) or font["name"].getDebugName(0) or ""
    notes.append(f"renamed \"{old_family}\" to \"{new_family}\" (--family to choose), so it does not clash with "
                 "the original; copyright and licence entries are kept, and the original font's licence applies "
                 f"to this one{': ' + licence.splitlines()[0][:160] if licence else ''}")
    if "CFF2" in font:
        raise FontgenError(f"{target}: CFF2 (variable PostScript) fonts are not supported for --merge-into")
    if "CFF " in font and to_truetype:
        _cff_to_glyf(font, notes)
    elif "CFF " not in font and "glyf" not in font:
        raise FontgenError(f"{target}: has no glyf or CFF outlines (bitmap-only fonts are not supported)")
    upm = font["head"].unitsPerEm
    em_top, em_bottom, em_source = em_box_vertical(font)
    cmap = font.getBestCmap()
    hmtx = font["hmtx"]
    vmtx = font["vmtx"] if "vmtx" in font else None
    ref = next((cmap[ord(c)] for c in IDEOGRAPH_REFERENCES if ord(c) in cmap), None)
    advance = hmtx[ref][0] if ref else upm
    v_advance = vmtx[ref][0] if (vmtx is not None and ref) else upm
    cff = "CFF " in font  # === a CFF target stays CFF (fontgen/cff_writer.py) ===
    glyf = None if cff else font["glyf"]
    if cff:
        v_origin = None  # cff_writer takes it from VORG or the reference ideograph
    elif ref and vmtx is not None and glyf[ref].numberOfContours:
        g = glyf[ref]
        g.recalcBounds(glyf)
        v_origin = g.yMax + vmtx[ref][1]
    else:
        v_origin = round(em_top)
    # what the font lacks by the rules generate drew by (fonts.coverage): also a character mapped to
    # an empty glyph, .notdef or a placeholder
    lacks = {ord(ch) for ch in coverage_of(target, [chr(cp) for cp in glyphs]).missing}
    mapped_empty = sum(cp in cmap for cp in lacks)
    if mapped_empty and not replace:
        notes.append(f"{mapped_empty} characters the font mapped to empty or placeholder glyphs now map to the "
                     "drawn ones")
    todo = {cp: c for cp, c in glyphs.items() if replace or cp in lacks}
    skipped = [cp for cp in glyphs if cp not in todo]
    order = list(font.getGlyphOrder())
    if len(order) + len(todo) > MAX_GLYPHS:
        raise FontgenError(f"{target} has {len(order)} glyphs; adding {len(todo)} would pass the TrueType "
                           f"limit of {MAX_GLYPHS} glyphs")
    existing = set(order)
    new_names = {}
    for cp in todo:
        name = glyph_name_for(cp)
        base, n = name, 1
        while name in existing:
            name = f"{base}.fontgen" if n == 1 else f"{base}.fontgen{n}"
            n += 1
        existing.add(name)
        new_names[cp] = name
    if cff:
        from fontgen.cff_writer import add_cff_glyphs

        outlines = {cp: map_contours(c, geometry, upm, em_bottom) for cp, c in todo.items()}
        new_names = add_cff_glyphs(font, outlines, new_names, advance, v_advance, ref, em_top,
                                   IDEOGRAPH_REFERENCES, notes)
    else:
        order = order + list(new_names.values())
        font.setGlyphOrder(order)
        glyf.glyphOrder = order
    for cp, contours in ({} if cff else todo).items():
        name = new_names[cp]
        mapped = map_contours(contours, geometry, upm, em_bottom)
        from fontTools.ttLib.tables._g_l_y_f import Glyph

        glyph = contours_to_glyph(mapped) if mapped else Glyph()
        glyf.glyphs[name] = glyph
        glyph.recalcBounds(glyf)
        has = glyph.numberOfContours != 0
        hmtx[name] = (advance, glyph.xMin if has else 0)
        if vmtx is not None:
            vmtx[name] = (v_advance, round(v_origin - glyph.yMax) if has else 0)
    if "post" in font and font["post"].formatType == 2.0:
        font["post"].extraNames = []
        font["post"].mapping = {}
    # cmap: add to every Unicode subtable, make sure formats 4 and 12 exist
    table = font["cmap"]
    new_map = {cp: new_names[cp] for cp in todo}
    unicode_subs = [t for t in table.tables if t.isUnicode()]
    for sub in unicode_subs:
        if sub.format == 4:
            sub.cmap.update({cp: n for cp, n in new_map.items() if cp <= 0xFFFF})
        elif sub.format in (12, 13) and sub.format == 12:
            sub.cmap.update(new_map)
        elif sub.format in (6, 10, 0):
            pass
    full = dict(cmap)
    full.update(new_map)
    have = {(t.platformID, t.platEncID, t.format) for t in table.tables}
    if not any(f == 4 for _, _, f in have):
        sub = CmapSubtable.newSubtable(4)
        sub.platformID, sub.platEncID, sub.language = 3, 1, 0
        sub.cmap = {cp: n for cp, n in full.items() if cp <= 0xFFFF}
        table.tables.append(sub)
    if not any(f == 12 for _, _, f in have):
        sub = CmapSubtable.newSubtable(12)
        sub.platformID, sub.platEncID, sub.language = 3, 10, 0
        sub.cmap = full
        table.tables.append(sub)
    table.tables.sort(key=lambda t: (t.platformID, t.platEncID, t.language))
    for tag in ("hdmx", "LTSH", "VDMX", "DSIG"):
        if tag in font:
            del font[tag]
            notes.append(f"dropped the '{tag.strip()}' table (it would no longer match the glyph set)")
    if "OS/2" in font:
        os2 = font["OS/2"]
        if os2.version >= 1:
            os2.ulCodePageRange1 = _set_bit(getattr(os2, "ulCodePageRange1", 0), 18)
        os2.ulUnicodeRange2 = _set_bit(os2.ulUnicodeRange2, 59 - 32)
        codes = list(full)
        os2.usFirstCharIndex = min(0xFFFF, min(codes))
        os2.usLastCharIndex = min(0xFFFF, max(codes))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(out_path)
    try:
        font.save(str(tmp))
    except Exception as exc:  # noqa: BLE001 - fontTools raises many kinds
        tmp.unlink(missing_ok=True)
        raise FontgenError(f"could not write the merged font ({type(exc).__name__}: {exc})") from None
    return {"tmp": tmp, "added": sorted(todo), "skipped": skipped, "notes": notes, "family": new_family,
            "units_per_em": upm, "em_top": em_top, "em_bottom": em_bottom, "em_source": em_source,
            "advance": advance, "cff": cff}


# ---------------------------------------------------------------------------------------
# Verification and specimen


def _render_margin(geometry: Geometry) -> float:
    return (geometry.image_size - geometry.scale * geometry.units_per_em) / 2


def verify_font(path: Path, sources: dict[int, Path], geometry: Geometry, min_iou: float = 0.75,
                progress: bool = False) -> dict:
    """Check a written font: fontTools, OTS, cmap, FreeType render-back IoU per glyph.

    A broken font is an error; glyphs that render back below `min_iou` are listed in
    info["below"] (codepoint -> IoU) for the caller to leave out or refuse.
    """
    from tqdm import tqdm

    import ots
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(str(path))
        cmap = font.getBestCmap() or {}
        font["glyf" if "glyf" in font else "CFF "], font["head"], font["hmtx"]  # TrueType or CFF outlines
    except Exception as exc:  # noqa: BLE001
        raise FontgenError(f"the written font does not reopen in fontTools ({type(exc).__name__}: {exc})") from None
    missing = [cp for cp in sources if cp not in cmap]
    if missing:
        raise FontgenError(f"the written font does not map {', '.join(f'U+{cp:04X}' for cp in missing[:10])}")
    result = ots.sanitize(str(path), capture_output=True)
    if result.returncode != 0:
        msg = (result.stderr or result.stdout or b"").decode("utf-8", "replace").strip().splitlines()
        raise FontgenError("the written font fails the OpenType Sanitizer: " + " | ".join(msg[-5:]))
    ver = Geometry.for_font(font, geometry.image_size, _render_margin(geometry))
    renderer = GlyphRenderer(FontSpec(Path(path)), ver)
    ious = {}
    for cp, src in tqdm(sources.items(), total=len(sources), desc="verifying", unit="glyph", disable=not progress,
                        leave=False):
        source = load_glyph_image(src, geometry.image_size) < 128
        back = renderer.render(chr(cp)) < 128
        ious[cp] = ink_iou(source, back)
    values = np.array(list(ious.values()))
    worst_cp = min(ious, key=ious.get)
    return {"iou": ious, "iou_mean": float(values.mean()), "iou_worst": float(values.min()),
            "worst_codepoint": worst_cp, "ots": "passed", "render_geometry": ver,
            "below": {cp: v for cp, v in ious.items() if v < min_iou}}


def write_specimen(font_path: Path, codepoints: list[int], out_png: Path, cell: int = 96, columns: int = 12,
                   first: set[int] | None = None) -> list[Path]:
    """Every written glyph rendered from the font, labelled with its codepoint, 240 per page
    (OUT-specimen.png, OUT-specimen-2.png, ...); codepoints in `first` (flagged ones) lead."""
    from fontTools.ttLib import TTFont

    from fontgen.images import glyph_sheet, paged_sheets

    first = first or set()
    cps = sorted(codepoints, key=lambda cp: cp not in first)
    font = TTFont(str(font_path), lazy=True)
    renderer = GlyphRenderer(FontSpec(Path(font_path)), Geometry.for_font(font, cell, margin=cell * 0.06))

    def page(start: int, stop: int, title: str):
        return glyph_sheet([[renderer.render(chr(cp))] for cp in cps[start:stop]],
                           [f"U+{cp:04X}" + (" !" if cp in first else "") for cp in cps[start:stop]],
                           cell=cell, columns=columns, emphasised=[cp in first for cp in cps[start:stop]],
                           title=title + (", flagged first" if first else ""))

    return paged_sheets(out_png, len(cps), page)


# A classical passage of common hanzi: the font's own glyphs around the generated ones.
RUNNING_TEXT = ("永和九年岁在癸丑暮春之初会于会稽山阴之兰亭修禊事也群贤毕至少长咸集此地有崇山峻岭茂林修竹"
                "又有清流激湍映带左右引以为流觞曲水列坐其次虽无丝竹管弦之盛一觞一咏亦足以畅叙幽情")
GENERATED_GROUND = (255, 214, 214)  # generated glyphs sit on this pale red


def write_text_specimen(font_path: Path, generated: list[int], out_png: Path, own_font: FontSpec | None = None,
                        sizes: tuple[int, ...] = (28, 96)) -> Path | None:
    """Lines of running text that mix the font's own glyphs with generated ones (on a pale red
    ground), at body and display size, so size, weight and baseline can be judged in context.

    `font_path` is the written font; own glyphs come from it (a merged font) or from
    `own_font` (the target, for a standalone font). Two own characters, then one generated.
    """
    from fontTools.ttLib import TTFont
    from PIL import Image, ImageDraw, ImageFont

    written = FontSpec(Path(font_path))
    generated = list(generated)
    own = own_font or written
    own_cmap = open_font(own).getBestCmap()
    made = set(generated)
    own_chars = [ch for ch in dict.fromkeys(RUNNING_TEXT) if ord(ch) in own_cmap and ord(ch) not in made]
    if not generated or not own_chars:
        return None
    text = []
    for i, cp in enumerate(generated[:60]):
        text += [own_chars[(2 * i) % len(own_chars)], own_chars[(2 * i + 1) % len(own_chars)], chr(cp)]
    per_line = {size: max(4, 1200 // size) for size in sizes}
    label = ImageFont.load_default()
    rows = []  # (size, characters of the line)
    for size in sizes:
        lines = 3 if size < 64 else 2
        for k in range(lines):
            chunk = text[k * per_line[size]:(k + 1) * per_line[size]]
            if chunk:
                rows.append((size, chunk))
    width = max(size * len(chunk) for size, chunk in rows) + 24
    height = 24 + sum(int(size * 1.25) + 14 for size, _ in rows)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((12, 4), "running text: the font's own glyphs, and generated ones on pale red", fill=(0, 0, 0),
              font=label)
    renderers: dict = {}
    y = 24
    for size, chunk in rows:
        draw.text((12, y), f"{size} px", fill=(120, 120, 120), font=label)
        y += 12
        for j, ch in enumerate(chunk):
            spec = written if ord(ch) in made else own
            key = (spec, size)
            if key not in renderers:
                renderers[key] = GlyphRenderer(spec, Geometry.for_font(TTFont(str(spec.path), lazy=True,
                                                                              fontNumber=spec.face), size))
            ink = renderers[key].render(ch)
            ground = GENERATED_GROUND if ord(ch) in made else (255, 255, 255)
            cell = np.empty((size, size, 3), np.uint8)
            alpha = (ink.astype(np.float32) / 255.0)[..., None]
            cell[:] = (alpha * np.array(ground, np.float32)).astype(np.uint8)
            sheet.paste(Image.fromarray(cell), (12 + j * size, y))
        y += int(size * 1.25) + 2
    tmp = temp_path(out_png, suffix=True)
    sheet.save(tmp)
    os.replace(tmp, out_png)
    return out_png
