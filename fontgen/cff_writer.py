"""OpenType/CFF output: new glyphs as Type 2 charstrings, the font's own glyphs untouched.

Most professional CJK fonts (Source Han, Noto CJK, many commercial ones) have CFF
outlines, the large ones CID-keyed (FDArray/FDSelect). `vectorize --merge-into` adds the
traced glyphs to such a font in its own format:

- the new glyphs are Type 2 charstrings built from cubic curves fitted directly to the
  traced outline (`fontgen.cubic`), not quadratics raised to cubics;
- they go into the private dict the font's ideographs use (CID-keyed: the FD of 国 一 永
  口 中, the most common one), get names that fit the charset (CID-keyed fonts:
  "cidNNNNN", the next free CIDs, CIDCount raised if needed), FDSelect entries, widths
  encoded against that private dict's defaultWidthX / nominalWidthX, hmtx, vmtx and VORG
  entries, and maxp numGlyphs;
- every existing charstring keeps its bytes (nothing decompiles it; the font is saved
  without recalculating bounding boxes from the outlines, which would re-encode every
  charstring; head, hhea, vhea and the CFF FontBBox are widened by the new glyphs
  instead), and the subroutines, private dicts and FDs are not touched.
  `check_charstrings_unchanged` proves it on the written file.

A standalone font named .otf is written with FontBuilder.setupCFF (`setup_standalone_cff`).
CFF2 (variable) fonts are refused by `fontwriter.merge_into_font`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fontgen.cubic import draw_cubic_contours
from fontgen.errors import FontgenError

MAX_CID = 65534  # CIDCount is at most 65535: CIDs 0..65534


def _free_cids(used: set[int], count: int) -> list[int]:
    """`count` unused CIDs: above the highest one used, then (if the font reaches the limit) the gaps."""
    top = max(used)
    cids = list(range(top + 1, min(top + 1 + count, MAX_CID + 1)))
    if len(cids) < count:
        cids += [c for c in range(1, top) if c not in used][:count - len(cids)]
    if len(cids) < count:
        raise FontgenError(f"the CID-keyed font has {len(used)} CIDs; {count} more would pass the limit of "
                           f"{MAX_CID + 1}")
    return cids


def is_cff(font) -> bool:
    return "CFF " in font


def _width_arg(advance: int, private) -> int | None:
    """The width operand of a charstring: none when the advance is the private dict's
    defaultWidthX, else relative to its nominalWidthX."""
    default = getattr(private, "defaultWidthX", 0) or 0
    nominal = getattr(private, "nominalWidthX", 0) or 0
    return None if advance == default else advance - nominal


def make_charstring(contours: list, advance: int, private, global_subrs):
    """A T2CharString of cubic (x, y, on_curve) contours in font units (rounded to integers)."""
    from fontTools.pens.t2CharStringPen import T2CharStringPen

    pen = T2CharStringPen(_width_arg(int(advance), private), None)
    draw_cubic_contours(pen, contours)
    return pen.getCharString(private=private, globalSubrs=global_subrs)


def _bounds(charstring, char_strings=None):
    from fontTools.pens.boundsPen import BoundsPen

    pen = BoundsPen(char_strings)
    charstring.draw(pen)
    return pen.bounds


def _copy_bounds(charstring, char_strings):
    """Bounds of an existing glyph, drawn from a copy so the font's own charstring keeps its bytecode."""
    import copy

    return _bounds(copy.copy(charstring), char_strings)


def ideograph_fd(top, font, cmap: dict, references: str) -> int:
    """The FDArray index the font's ideographs use: the most common FD of the reference
    ideographs it maps (else of all glyphs)."""
    order = top.charset
    index = {name: i for i, name in enumerate(order)}
    fds = [top.FDSelect[index[cmap[ord(ch)]]] for ch in references if ord(ch) in cmap and cmap[ord(ch)] in index]
    if not fds:
        fds = list(top.FDSelect.gidArray)
    return Counter(fds).most_common(1)[0][0]


def _cid_of(name: str) -> int:
    if name == ".notdef":
        return 0
    if name.startswith("cid") and name[3:].isdigit():
        return int(name[3:])
    raise FontgenError(f"unexpected glyph name {name!r} in a CID-keyed font")


def add_cff_glyphs(font, outlines: dict, names: dict, advance: int, v_advance: int, ref: str | None,
                   em_top: float, references: str, notes: list[str]) -> dict:
    """Add cubic glyphs to the CFF table of `font` in place; returns codepoint -> glyph name.

    `outlines`: codepoint -> cubic contours in the font's units; `names`: codepoint -> the
    glyph name a name-keyed font should use (CID-keyed fonts get "cidNNNNN" instead).
    Widths are `advance` (the reference ideograph's), vertical advances `v_advance`.
    """
    cff = font["CFF "].cff
    top = cff.topDictIndex[0]
    char_strings = top.CharStrings
    cid_keyed = hasattr(top, "ROS") or hasattr(top, "FDArray")
    old_order = list(top.charset)
    snapshot = {}
    for name in old_order:
        cs = char_strings[name]
        if cs.bytecode is not None:
            snapshot[name] = cs.bytecode
    cmap = font.getBestCmap() or {}
    if cid_keyed:
        fd = ideograph_fd(top, font, cmap, references)
        private = top.FDArray[fd].Private
        cids = _free_cids({_cid_of(n) for n in old_order}, len(outlines))
        new_names = {cp: f"cid{cid:05d}" for cp, cid in zip(outlines, cids)}
        span = f"{cids[0]}-{cids[-1]}" if len(cids) > 1 else f"{cids[0]}" if cids else "none"
        notes.append(f"CID-keyed CFF: the new glyphs are CIDs {span} in font dict {fd} "
                     f"({getattr(top.FDArray[fd], 'FontName', '?')}), the one the font's ideographs use")
    else:
        fd = None
        private = top.Private
        new_names = dict(names)
    # vertical origin: the reference ideograph's (VORG, else its top plus its top side bearing)
    vorg = font["VORG"] if "VORG" in font else None
    vmtx = font["vmtx"] if "vmtx" in font else None
    if vorg is not None:
        v_origin = vorg.VOriginRecords.get(ref, vorg.defaultVertOriginY) if ref else vorg.defaultVertOriginY
    elif vmtx is not None and ref and ref in char_strings:
        b = _copy_bounds(char_strings[ref], char_strings)
        v_origin = b[3] + vmtx[ref][1] if b else round(em_top)
    else:
        v_origin = round(em_top)
    hmtx = font["hmtx"]
    order = old_order + [new_names[cp] for cp in outlines]
    new_bounds = {}
    index = char_strings.charStringsIndex if char_strings.charStringsAreIndexed else None
    for cp, contours in outlines.items():
        name = new_names[cp]
        cs = make_charstring(contours, advance, private, cff.GlobalSubrs)
        if index is not None:
            index.append(cs)
            char_strings.charStrings[name] = len(index) - 1
        else:
            if fd is not None:
                cs.fdSelectIndex = fd
            char_strings.charStrings[name] = cs
        if fd is not None:
            top.FDSelect.append(fd)
        b = _bounds(cs)
        new_bounds[name] = b
        hmtx[name] = (int(advance), b[0] if b else 0)
        if vmtx is not None:
            vmtx[name] = (int(v_advance), round(v_origin - b[3]) if b else 0)
        if vorg is not None and v_origin != vorg.defaultVertOriginY:
            vorg.VOriginRecords[name] = int(round(v_origin))
    top.charset = list(order)
    font.setGlyphOrder(list(order))
    if cid_keyed and new_names:
        top.CIDCount = max(getattr(top, "CIDCount", 8720), max(_cid_of(n) for n in new_names.values()) + 1)
    if vorg is not None:
        vorg.numVertOriginYMetrics = len(vorg.VOriginRecords)
    font["maxp"].numGlyphs = len(order)
    _widen_bounds(font, top, new_bounds, int(advance), int(v_advance) if vmtx is not None else None)
    # nothing above decompiled an existing charstring; make sure of it
    for name, bytecode in snapshot.items():
        cs = char_strings[name]
        if cs.bytecode != bytecode:
            cs.setBytecode(bytecode)
    font.recalcBBoxes = False  # recalculating would decompile (and re-encode) every charstring
    return new_names


def _widen_bounds(font, top, new_bounds: dict, advance: int, v_advance: int | None) -> None:
    """Widen the font-wide boxes and extents (head, CFF FontBBox, hhea, vhea) by the new glyphs."""
    boxes = [b for b in new_bounds.values() if b]
    if not boxes:
        return
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[2] for b in boxes)
    y1 = max(b[3] for b in boxes)
    head = font["head"]
    head.xMin, head.yMin = min(head.xMin, int(x0)), min(head.yMin, int(y0))
    head.xMax, head.yMax = max(head.xMax, int(-(-x1 // 1))), max(head.yMax, int(-(-y1 // 1)))
    fb = list(getattr(top, "FontBBox", [0, 0, 0, 0]))
    top.FontBBox = [min(fb[0], head.xMin), min(fb[1], head.yMin), max(fb[2], head.xMax), max(fb[3], head.yMax)]
    hhea = font["hhea"]
    hhea.advanceWidthMax = max(hhea.advanceWidthMax, advance)
    hhea.minLeftSideBearing = min(hhea.minLeftSideBearing, int(x0))
    hhea.minRightSideBearing = min(hhea.minRightSideBearing, int(min(advance - b[2] for b in boxes)))
    hhea.xMaxExtent = max(hhea.xMaxExtent, int(x1))
    if v_advance is not None and "vhea" in font and "vmtx" in font:
        vhea, vmtx = font["vhea"], font["vmtx"]
        tsbs = {n: vmtx[n][1] for n, b in new_bounds.items() if b}
        vhea.advanceHeightMax = max(vhea.advanceHeightMax, v_advance)
        vhea.minTopSideBearing = min(vhea.minTopSideBearing, min(tsbs.values()))
        vhea.minBottomSideBearing = min(vhea.minBottomSideBearing,
                                        int(min(v_advance - tsbs[n] - (b[3] - b[1]) for n, b in new_bounds.items()
                                                if b)))
        vhea.yMaxExtent = max(vhea.yMaxExtent, int(max(tsbs[n] + (b[3] - b[1]) for n, b in new_bounds.items()
                                                        if b)))


def setup_standalone_cff(fb, outlines: dict, upm: int, em_top: float, em_bottom: float, ps_name: str,
                         full_name: str, family: str) -> dict:
    """CFF outlines of a standalone font: `outlines` maps glyph names (in glyph order, after
    .notdef) to cubic contours in font units. Returns name -> bounds (None when empty)."""
    m, stroke = round(upm * 0.1), round(upm * 0.05)
    x0, x1, y0, y1 = m, upm - m, round(em_bottom) + m, round(em_top) - m
    # .notdef: a box with a counter (outer counter-clockwise, inner clockwise: PostScript)
    notdef = [[(x0, y0, True), (x1, y0, True), (x1, y1, True), (x0, y1, True)],
              [(x0 + stroke, y0 + stroke, True), (x0 + stroke, y1 - stroke, True),
               (x1 - stroke, y1 - stroke, True), (x1 - stroke, y0 + stroke, True)]]
    private = {"defaultWidthX": upm, "nominalWidthX": upm}

    class _P:  # widths equal defaultWidthX: no width operand
        defaultWidthX = upm
        nominalWidthX = upm

    charstrings = {".notdef": make_charstring(notdef, upm, _P, None)}
    for name, contours in outlines.items():
        charstrings[name] = make_charstring(contours, upm, _P, None)
    fb.setupCFF(ps_name, {"FullName": full_name, "FamilyName": family, "Weight": "Regular"}, charstrings,
                private)
    cs = fb.font["CFF "].cff.topDictIndex[0].CharStrings
    return {name: _bounds(cs[name], cs) for name in charstrings}


def check_charstrings_unchanged(original, written: Path) -> int:
    """Raise unless every glyph of the `original` CFF font (a FontSpec) has byte-identical
    charstrings, subroutines and FDSelect entries in the `written` font; returns the count checked."""
    from fontTools.ttLib import TTFont

    from fontgen.fonts import open_font

    a = open_font(original, lazy=True)["CFF "].cff
    b = TTFont(str(written), lazy=True)["CFF "].cff
    ta, tb = a.topDictIndex[0], b.topDictIndex[0]
    changed = []
    for gid, name in enumerate(ta.charset):
        if gid >= len(tb.charset) or tb.charset[gid] != name:
            raise FontgenError(f"the written font reorders the original glyphs (glyph {gid} {name!r})")
        ca, cb = ta.CharStrings[name], tb.CharStrings[name]
        ca.compile()
        cb.compile()
        if ca.bytecode != cb.bytecode:
            changed.append(name)
    if changed:
        raise FontgenError(f"{len(changed)} of the font's own charstrings changed in the written font "
                           f"(first: {changed[0]}); nothing was written")

    def subrs(top):
        out = [bytes(s.bytecode) for s in _compiled(getattr(top, "GlobalSubrs", []))]
        privates = [fd.Private for fd in top.FDArray] if hasattr(top, "FDArray") else [top.Private]
        for p in privates:
            out += [bytes(s.bytecode) for s in _compiled(getattr(p, "Subrs", []) or [])]
        return out

    if subrs(ta) != subrs(tb) or [bytes(x.bytecode) for x in _compiled(a.GlobalSubrs)] != \
            [bytes(x.bytecode) for x in _compiled(b.GlobalSubrs)]:
        raise FontgenError("the written font's subroutines differ from the original's; nothing was written")
    if hasattr(ta, "FDSelect"):
        n = len(ta.charset)
        if list(ta.FDSelect.gidArray[:n]) != list(tb.FDSelect.gidArray[:n]) or len(ta.FDArray) != len(tb.FDArray):
            raise FontgenError("the written font's FDSelect / FDArray differ from the original's")
    return len(ta.charset)


def _compiled(index):
    for i in range(len(index)):
        s = index[i]
        s.compile()
        yield s


def outline_point_counts(font, names) -> tuple[int, int, int]:
    """(contours, on-curve points, off-curve points) of glyphs drawn from any outline format."""
    from fontTools.pens.recordingPen import RecordingPen

    glyph_set = font.getGlyphSet()
    contours = on = off = 0
    for name in names:
        pen = RecordingPen()
        glyph_set[name].draw(pen)
        start = None
        ops = pen.value
        for k, (op, args) in enumerate(ops):
            if op == "moveTo":
                contours += 1
                on += 1
                start = tuple(args[0])
            elif op in ("lineTo", "curveTo", "qCurveTo"):
                implied = args[-1] is None
                off += len(args) - (0 if implied else 1)
                closing = k + 1 < len(ops) and ops[k + 1][0] == "closePath" and not implied \
                    and tuple(args[-1]) == start
                on += 0 if (implied or closing) else 1
    return contours, on, off
