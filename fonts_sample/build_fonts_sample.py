#!/usr/bin/env python3
"""Build the ``fonts_sample/`` folder: small subsets of freely licensed Chinese fonts.

This script is how every font file, ``charset.txt``, ``manifest.json``,
``README.md`` and the ``*.LICENSE.txt`` files in this folder were produced.
It is deterministic: re-running it with the same Debian packages gives the
same character choice, the same dropped characters and the same coverage.

Preparation (Debian bookworm; nothing is installed system-wide)::

    apt-get update
    mkdir -p /tmp/fs_debs /tmp/fs_x && cd /tmp/fs_debs
    for p in fonts-noto-cjk fonts-noto-cjk-extra fonts-arphic-ukai \\
             fonts-arphic-uming fonts-arphic-gkai00mp fonts-arphic-gbsn00lp \\
             fonts-seto fonts-smiley-sans fonts-lxgw-wenkai fonts-hanazono \\
             fonts-wqy-microhei; do
        apt-get download "$p"
    done
    for d in *.deb; do n=${d%%_*}; mkdir -p /tmp/fs_x/$n; dpkg -x "$d" /tmp/fs_x/$n; done

Then (needs fontTools; Pillow only for the final render check)::

    python fonts_sample/build_fonts_sample.py            # uses /tmp/fs_debs, /tmp/fs_x
    python fonts_sample/build_fonts_sample.py --debs DIR --extracted DIR

What it does
------------
1. Sample charset: the 3,755 GB2312 level-1 hanzi (rows 0xB0-0xD7) are
   decoded with Python's ``gb2312`` codec.  For every font below it computes
   the chars that are *present* (cmap -> glyph that is not ``.notdef`` and
   whose outline has bounds, via ``ControlBoundsPen``).  The charset is the
   fixed "must" characters (一 口 回 国 永 田 目 家 书 学 飞 鸟 乙) plus a
   ``random.Random(0)`` sample from the chars that *all* fonts have, 800 in
   all, sorted by code point.
2. Source font: Noto Sans CJK SC Regular, subset to all 800 chars (CFF .otf).
3. Targets: each style ``i`` keeps its present chars minus a
   ``random.Random(i)`` drop set, so that its missing fraction is a
   seed-determined value in [0.16, 0.29] (always within 15-30%).
4. Subsetting with ``fontTools.subset``: outlines kept, hinting and layout
   features dropped, vhea/vmtx/VORG/OS/2/BASE kept, embedded bitmaps and
   obsolete tables dropped.  All families are renamed "Fontgen Sample ..."
   (name IDs 1,2,3,4,6,16,17 and CFF names) so no Reserved Font Name
   ("Noto", "Source", "LXGW"/"霞鹜", "HanaMinA"/"Hanazono Font", ...) is
   used; copyright/licence name IDs 0, 5, 13, 14 are kept.
5. AR PL UMing is written as a 2-face TrueType Collection (face 0 = TW,
   face 1 = CN; the style uses face 1) to exercise ``path#N`` handling.
   Noto subsets stay CFF-flavoured ``.otf``; the rest are ``.ttf``.
6. Writes charset.txt, manifest.json, README.md and one LICENSE file per
   font (the package's Debian copyright file verbatim, plus ARPHICPL.TXT /
   Apache-2.0 full texts where the copyright file only refers to them).
7. Verifies everything (opens each font, recounts coverage, renders a
   glyph with Pillow if available).
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import re
import sys
import urllib.parse

from fontTools import subset
from fontTools.pens.boundsPen import ControlBoundsPen
from fontTools.ttLib import TTCollection, TTFont, newTable

HERE = os.path.dirname(os.path.abspath(__file__))
N_CHARS = 800
MUST = "一口回国永田目家书学飞鸟乙丶"
MISSING_RANGE = (0.16, 0.29)  # target missing fraction drawn per style

OFL = "OFL-1.1"
ARPHIC = "Arphic-1999"  # SPDX id of the Arphic Public License
APACHE = "Apache-2.0"

NOTO = "fonts-noto-cjk"
NOTO_X = "fonts-noto-cjk-extra"
NOTO_DIR = "usr/share/fonts/opentype/noto"

# Source font (style-neutral, regular weight, complete coverage).
SOURCE = dict(
    name="source-noto-sans-sc-regular", pkg=NOTO, file=f"{NOTO_DIR}/NotoSansCJK-Regular.ttc",
    face=2, family="Fontgen Sample Base Sans", sub="Regular", license=OFL,
    out="source_sans_regular.otf",
)

# Target styles, id = position in this list.  `face` is the face index in the
# ORIGINAL file (Noto CJK .ttc: face 2 = SC).  `out` is the file written here.
STYLES = [
    dict(name="hei-noto-sans-thin", pkg=NOTO_X, file=f"{NOTO_DIR}/NotoSansCJK-Thin.ttc", face=2,
         family="Fontgen Sample Sans", sub="Thin", license=OFL, out="style00_sans_thin.otf"),
    dict(name="hei-noto-sans-bold", pkg=NOTO, file=f"{NOTO_DIR}/NotoSansCJK-Bold.ttc", face=2,
         family="Fontgen Sample Sans", sub="Bold", license=OFL, out="style01_sans_bold.otf"),
    dict(name="hei-noto-sans-black", pkg=NOTO_X, file=f"{NOTO_DIR}/NotoSansCJK-Black.ttc", face=2,
         family="Fontgen Sample Sans", sub="Black", license=OFL, out="style02_sans_black.otf"),
    dict(name="song-noto-serif-extralight", pkg=NOTO_X, file=f"{NOTO_DIR}/NotoSerifCJK-ExtraLight.ttc",
         face=2, family="Fontgen Sample Serif", sub="ExtraLight", license=OFL,
         out="style03_serif_extralight.otf"),
    dict(name="song-noto-serif-bold", pkg=NOTO, file=f"{NOTO_DIR}/NotoSerifCJK-Bold.ttc", face=2,
         family="Fontgen Sample Serif", sub="Bold", license=OFL, out="style04_serif_bold.otf"),
    dict(name="song-noto-serif-black", pkg=NOTO_X, file=f"{NOTO_DIR}/NotoSerifCJK-Black.ttc", face=2,
         family="Fontgen Sample Serif", sub="Black", license=OFL, out="style05_serif_black.otf"),
    # TTC: special-cased below (faces TW + CN of uming.ttc -> 2-face collection, style uses face 1)
    dict(name="ming-arphic-uming", pkg="fonts-arphic-uming", file="usr/share/fonts/truetype/arphic/uming.ttc",
         face=0, family="Fontgen Sample Ming", sub="Regular", license=ARPHIC, out="style06_ming_uming.ttc",
         ttc_faces=[(2, "Fontgen Sample Ming TW"), (0, "Fontgen Sample Ming")], out_face=1),
    dict(name="kai-arphic-ukai", pkg="fonts-arphic-ukai", file="usr/share/fonts/truetype/arphic/ukai.ttc",
         face=0, family="Fontgen Sample Kai", sub="Regular", license=ARPHIC, out="style07_kai_ukai.ttf"),
    dict(name="kai-arphic-gkai", pkg="fonts-arphic-gkai00mp",
         file="usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf", face=0,
         family="Fontgen Sample Kaiti GB", sub="Regular", license=ARPHIC, out="style08_kai_gkai.ttf"),
    dict(name="song-arphic-gbsn", pkg="fonts-arphic-gbsn00lp",
         file="usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf", face=0,
         family="Fontgen Sample Songti GB", sub="Regular", license=ARPHIC, out="style09_song_gbsn.ttf"),
    dict(name="kai-wenkai-regular", pkg="fonts-lxgw-wenkai",
         file="usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf", face=0,
         family="Fontgen Sample Wen Kai", sub="Regular", license=OFL, out="style10_wenkai_regular.ttf"),
    dict(name="hei-wqy-microhei", pkg="fonts-wqy-microhei", file="usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
         face=0, family="Fontgen Sample Micro Hei", sub="Regular", license=APACHE,
         out="style11_microhei.ttf"),
    dict(name="handwriting-seto", pkg="fonts-seto", file="usr/share/fonts/truetype/seto/setofont.ttf", face=0,
         family="Fontgen Sample Handwriting", sub="Regular", license=OFL, out="style12_handwriting_seto.ttf"),
    dict(name="display-smiley-oblique", pkg="fonts-smiley-sans",
         file="usr/share/fonts/truetype/smiley-sans/SmileySans-Oblique.ttf", face=0,
         family="Fontgen Sample Display", sub="Oblique", license=OFL, out="style13_display_oblique.ttf"),
    dict(name="mincho-hanazono", pkg="fonts-hanazono", file="usr/share/fonts/truetype/hanazono/HanaMinA.ttf",
         face=0, family="Fontgen Sample Mincho", sub="Regular", license=OFL, out="style14_mincho.ttf"),
    dict(name="kai-wenkai-bold", pkg="fonts-lxgw-wenkai",
         file="usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Bold.ttf", face=0,
         family="Fontgen Sample Wen Kai", sub="Bold", license=OFL, out="style15_wenkai_bold.ttf"),
]

LICENSE_NAMES = {
    OFL: "SIL Open Font License 1.1",
    ARPHIC: "Arphic Public License (1999)",
    APACHE: "Apache License 2.0",
}


# ----------------------------------------------------------------- helpers
def gb2312_level1() -> list[str]:
    out = []
    for hi in range(0xB0, 0xD8):
        for lo in range(0xA1, 0xFF):
            if hi == 0xD7 and lo >= 0xFA:  # undefined 0xD7FA-0xD7FE
                continue
            out.append(bytes([hi, lo]).decode("gb2312"))
    return out


def present_chars(font: TTFont, chars) -> set[str]:
    """Chars whose cmap glyph is not .notdef and draws a non-empty outline."""
    cmap = font.getBestCmap() or {}
    gs = font.getGlyphSet()
    res = set()
    for c in chars:
        g = cmap.get(ord(c))
        if not g or g == ".notdef" or g not in gs:
            continue
        pen = ControlBoundsPen(gs)
        gs[g].draw(pen)
        if pen.bounds is not None:
            res.add(c)
    return res


def deb_version(debs: str, pkg: str, extracted: str) -> str:
    hits = sorted(glob.glob(os.path.join(debs, f"{pkg}_*.deb")))
    if hits:
        return urllib.parse.unquote(os.path.basename(hits[-1]).split("_")[1])
    with gzip.open(os.path.join(extracted, pkg, f"usr/share/doc/{pkg}/changelog.Debian.gz"), "rt") as fh:
        return re.search(r"\(([^)]+)\)", fh.readline()).group(1)


def subset_options() -> subset.Options:
    o = subset.Options()
    o.layout_features = []          # no GSUB/GPOS features needed for glyph images
    o.hinting = False               # drop TrueType instructions / CFF hints
    o.desubroutinize = False
    o.notdef_outline = True
    o.glyph_names = False
    o.name_IDs = ["*"]
    o.name_languages = ["*"]
    o.name_legacy = True
    o.drop_tables = [t for t in o.drop_tables if t != "BASE"] + [
        "BDF ", "FFTM", "prop", "mort", "morx", "kern", "hdmx", "VDMX", "meta"]
    return o


def subset_font(path: str, face: int, keep: set[str]) -> TTFont:
    f = TTFont(path, fontNumber=face, lazy=False, recalcTimestamp=False)
    s = subset.Subsetter(options=subset_options())
    s.populate(unicodes=[ord(c) for c in sorted(keep)])
    s.subset(f)
    return f


def rename(font: TTFont, family: str, sub: str, license_id: str) -> None:
    """Replace the naming (RFN-free); keep name IDs 0, 5, 13, 14."""
    name = font["name"]
    kept = {}
    for nid in (0, 5, 13, 14):
        rec = (name.getName(nid, 3, 1, 0x409) or name.getName(nid, 3, 10, 0x409)
               or name.getName(nid, 1, 0, 0))
        if rec is None:
            recs = [r for r in name.names if r.nameID == nid]
            rec = recs[0] if recs else None
        if rec is not None:
            kept[nid] = rec.toUnicode()
    if 13 not in kept:
        kept[13] = f"This Font Software is licensed under the {LICENSE_NAMES[license_id]}."
    ribbi = sub in ("Regular", "Bold", "Italic", "Bold Italic")
    fam1 = family if ribbi else f"{family} {sub}"
    sub2 = sub if ribbi else "Regular"
    full = family if sub == "Regular" else f"{family} {sub}"
    ps = re.sub(r"[^A-Za-z0-9]", "", family) + "-" + re.sub(r"[^A-Za-z0-9]", "", sub)
    ver = kept.get(5, "Version 1.000")
    new = {1: fam1, 2: sub2, 3: f"fontgen-sample: {ps}: {ver}", 4: full, 6: ps, 16: family, 17: sub}
    new.update(kept)
    name.names = []
    for nid, txt in sorted(new.items()):
        name.setName(txt, nid, 3, 1, 0x409)
    if "CFF " in font:
        cff = font["CFF "].cff
        old = cff.fontNames[0]
        cff.fontNames = [ps]
        top = cff.topDictIndex[0]
        top.FullName = full
        top.FamilyName = family
        if hasattr(top, "FDArray"):
            for fd in top.FDArray:
                fn = getattr(fd, "FontName", None)
                if fn:
                    fd.FontName = ps + fn[len(old):] if fn.startswith(old) else ps


# ------------------------------------------------------------------ build
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--debs", default="/tmp/fs_debs", help="folder with the downloaded .deb files")
    ap.add_argument("--extracted", default="/tmp/fs_x", help="folder with one `dpkg -x` tree per package")
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    X, OUT = args.extracted, args.out

    def src(spec):
        return os.path.join(X, spec["pkg"], spec["file"])

    level1 = gb2312_level1()
    assert len(level1) == 3755
    print("scanning coverage of GB2312 level 1 ...", flush=True)
    full_present = {}
    for spec in [SOURCE] + STYLES:
        f = TTFont(src(spec), fontNumber=spec["face"], lazy=True)
        full_present[spec["name"]] = present_chars(f, level1)
        if "ttc_faces" in spec:
            for fi, _ in spec["ttc_faces"]:
                g = TTFont(src(spec), fontNumber=fi, lazy=True)
                full_present[spec["name"]] &= present_chars(g, level1)
        n = len(full_present[spec["name"]])
        print(f"  {spec['name']:28s} {n}/3755 = {n / 3755:.1%}", flush=True)
        assert n / 3755 >= 0.70, spec["name"]

    # ---- charset
    must = [c for c in MUST if c in level1]
    common = set(level1)
    for p in full_present.values():
        common &= p
    pool = sorted(common - set(must))
    rest = random.Random(0).sample(pool, N_CHARS - len(must))
    charset = sorted(set(must) | set(rest), key=ord)
    assert len(charset) == N_CHARS
    with open(os.path.join(OUT, "charset.txt"), "w", encoding="utf-8") as fh:
        fh.write("".join(charset) + "\n")
    print(f"charset: {len(charset)} chars ({len(common)} level-1 chars common to all fonts)")

    records = []
    # ---- source
    sf = subset_font(src(SOURCE), SOURCE["face"], set(charset))
    rename(sf, SOURCE["family"], SOURCE["sub"], SOURCE["license"])
    sf.save(os.path.join(OUT, SOURCE["out"]))

    # ---- targets
    for sid, spec in enumerate(STYLES):
        rng = random.Random(sid)
        have = sorted(full_present[spec["name"]] & set(charset), key=ord)
        natural = N_CHARS - len(have)
        frac = rng.uniform(*MISSING_RANGE)
        n_drop = max(0, round(N_CHARS * frac) - natural)
        drop = set(rng.sample(have, n_drop))
        keep = set(have) - drop
        out = os.path.join(OUT, spec["out"])
        if "ttc_faces" in spec:
            faces = []
            for fi, fam in spec["ttc_faces"]:
                ft = subset_font(src(spec), fi, keep)
                rename(ft, fam, spec["sub"], spec["license"])
                faces.append(ft)
            coll = TTCollection()
            coll.fonts = faces
            coll.save(out, shareTables=True)
            face_out = spec["out_face"]
            family = spec["ttc_faces"][face_out][1]
        else:
            ft = subset_font(src(spec), spec["face"], keep)
            rename(ft, spec["family"], spec["sub"], spec["license"])
            ft.save(out)
            face_out = 0
            family = spec["family"]
        records.append(dict(id=sid, spec=spec, keep=keep, natural=natural, dropped=len(drop),
                            face=face_out, family=family))
        print(f"  style {sid:2d} {spec['name']:28s} keep {len(keep)}/800 "
              f"(natural gaps {natural}, dropped {len(drop)}) -> {spec['out']}", flush=True)

    # ---- licences
    write_licenses(X, OUT, [SOURCE] + STYLES)

    # ---- manifest
    def origin(spec, face):
        v = deb_version(args.debs, spec["pkg"], X)
        orig = TTFont(src(spec), fontNumber=face, lazy=True)["name"].getDebugName(4)
        return v, orig, (f"Debian package {spec['pkg']} {v}, original file "
                         f"{os.path.basename(spec['file'])}" + (f" face {face}" if spec["file"].endswith(".ttc") else "")
                         + f" ({orig})")

    sv, sorig, sorigin = origin(SOURCE, SOURCE["face"])
    manifest = {
        "version": 1,
        "charset": "charset.txt",
        "source": {"path": SOURCE["out"], "face": 0, "name": SOURCE["name"],
                   "family": SOURCE["family"], "license": SOURCE["license"], "origin": sorigin},
        "styles": [],
    }
    rows = []
    for r in records:
        spec = r["spec"]
        orig_face = spec["ttc_faces"][r["face"]][0] if "ttc_faces" in spec else spec["face"]
        v, orig, org = origin(spec, orig_face)
        manifest["styles"].append({
            "id": r["id"], "name": spec["name"], "path": spec["out"], "face": r["face"],
            "family": r["family"], "license": spec["license"], "origin": org,
        })
        rows.append((r, v, orig))
    with open(os.path.join(OUT, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=2)
        fh.write("\n")

    # ---- verify + README
    table = verify(OUT, manifest, charset)
    write_readme(OUT, manifest, table, (sv, sorig), rows, len(common))
    return 0


def write_licenses(X, OUT, specs):
    for spec in specs:
        stem = os.path.splitext(spec["out"])[0]
        doc = os.path.join(X, spec["pkg"], "usr/share/doc", spec["pkg"])
        parts = [
            f"Licence for {spec['out']}\n"
            f"{'=' * (12 + len(spec['out']))}\n\n"
            f"{spec['out']} is a modified (subset, renamed) version of {os.path.basename(spec['file'])}\n"
            f"from the Debian package {spec['pkg']}. Licence: {LICENSE_NAMES[spec['license']]} "
            f"({spec['license']}).\n"
            f"The font was renamed to \"{spec['family']}\" so that no Reserved Font Name is used.\n"
            f"Below: the package's Debian copyright file, verbatim, and the full licence text.\n\n",
        ]
        with open(os.path.join(doc, "copyright"), encoding="utf-8", errors="replace") as fh:
            parts.append("-" * 72 + f"\n/usr/share/doc/{spec['pkg']}/copyright\n" + "-" * 72 + "\n" + fh.read())
        if spec["license"] == ARPHIC:
            with gzip.open(os.path.join(doc, "license/english/ARPHICPL.TXT.gz"), "rt",
                           encoding="latin-1") as fh:
                parts.append("\n" + "-" * 72 + f"\n/usr/share/doc/{spec['pkg']}/license/english/ARPHICPL.TXT\n"
                             + "-" * 72 + "\n" + fh.read())
        if spec["license"] == APACHE:
            with open("/usr/share/common-licenses/Apache-2.0", encoding="utf-8") as fh:
                parts.append("\n" + "-" * 72 + "\n/usr/share/common-licenses/Apache-2.0\n" + "-" * 72 + "\n"
                             + fh.read())
        with open(os.path.join(OUT, f"{stem}.LICENSE.txt"), "w", encoding="utf-8") as fh:
            fh.write("".join(parts))


def verify(OUT, manifest, charset):
    """Open every font, recount coverage, render one present char with Pillow."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:  # pragma: no cover
        ImageFont = None
    entries = [dict(manifest["source"], id="source")] + manifest["styles"]
    table = []
    for e in entries:
        path = os.path.join(OUT, e["path"])
        f = TTFont(path, fontNumber=e["face"])
        p = present_chars(f, charset)
        cmap = f.getBestCmap()
        extra = {chr(u) for u in cmap} - set(charset)
        assert not extra, (e["path"], sorted(extra)[:5])
        miss = 1 - len(p) / len(charset)
        if e["id"] == "source":
            assert len(p) == len(charset), "source must cover the whole charset"
        else:
            assert 0.15 <= miss <= 0.30, (e["path"], miss)
        if ImageFont is not None:
            ch = sorted(p, key=ord)[0]
            im = Image.new("L", (96, 96), 0)
            ImageDraw.Draw(im).text((8, 8), ch, fill=255,
                                    font=ImageFont.truetype(path, size=64, index=e["face"]))
            assert im.getbbox() is not None, f"{e['path']}: nothing rendered"
        kind = "CFF" if "CFF " in f else "TrueType"
        table.append(dict(id=e["id"], name=e["name"], path=e["path"], face=e["face"], glyphs=len(f.getGlyphOrder()),
                          present=len(p), kind=kind, size=os.path.getsize(path)))
    return table


def write_readme(OUT, manifest, table, source_info, rows, n_common):
    by_id = {t["id"]: t for t in table}
    s = by_id["source"]
    L = []
    L.append("# fonts_sample — small CJK font subsets for fontgen tests and demos\n")
    L.append("These are **subsets made for testing and demonstration** (800 simplified-Chinese characters), "
             "not complete fonts. Every file is a modified version of a freely licensed font shipped in Debian; "
             "each has its licence beside it as `<file stem>.LICENSE.txt`. All families are renamed "
             "\"Fontgen Sample …\" so that no Reserved Font Name of the originals (e.g. \"Noto\", \"Source\", "
             "\"LXGW\"/\"霞鹜\", \"HanaMinA\", \"Hanazono Font\") is used.\n")
    L.append("## Files\n")
    L.append("- `charset.txt` — the 800 sample characters, one line, sorted by code point.\n"
             "- `manifest.json` — source font and target styles (id, name, path, TTC face, family, licence, origin).\n"
             "- `build_fonts_sample.py` — the script that built this folder (re-runnable; see its docstring).\n"
             "- `*.LICENSE.txt` — the licence of each font (Debian copyright file verbatim + full licence text).\n")
    L.append("## Source font\n")
    L.append(f"`{s['path']}` — subset of **{source_info[1]}** (Debian `fonts-noto-cjk` {source_info[0]}, "
             f"`NotoSansCJK-Regular.ttc` face 2 = SC), SIL OFL 1.1, CFF outlines, renamed "
             f"\"{manifest['source']['family']}\". It covers all {s['present']}/800 chars ({s['glyphs']} glyphs incl. "
             f".notdef, {s['size'] / 1024:.0f} KiB). A plain, regular-weight sans "
             "(hei) was chosen because it is neutral, complete for GB2312 and of very consistent quality, "
             "which is what a style-transfer source needs.\n")
    L.append("## Target styles\n")
    L.append("| id | style name | file (face) | origin package (version) | original font | licence | outlines | "
             "glyphs | coverage | size |")
    L.append("|---:|---|---|---|---|---|---|---:|---:|---:|")
    for r, v, orig in rows:
        t = by_id[r["id"]]
        spec = r["spec"]
        fileface = f"`{t['path']}`" + (f" (#{t['face']})" if t["path"].endswith(".ttc") else "")
        L.append(f"| {t['id']} | {t['name']} | {fileface} | {spec['pkg']} ({v}) | "
                 f"{orig} (`{os.path.basename(spec['file'])}`) | {spec['license']} | {t['kind']} | {t['glyphs']} | "
                 f"{t['present']}/800 ({t['present'] / 8:.1f}%) | {t['size'] / 1024:.0f} KiB |")
    L.append("")
    L.append("\"glyphs\" counts all glyphs in the subset including `.notdef`; \"coverage\" counts the charset "
             "characters whose cmap glyph is not `.notdef` and has a non-empty outline (fontTools "
             "`ControlBoundsPen` bounds not None).\n")
    L.append("## How this folder was made\n")
    L.append(f"The 3,755 GB2312 level-1 hanzi were decoded with Python's `gb2312` codec; {n_common} of them are "
             "present in the source and in every target original. The charset is 一 口 回 国 永 田 目 家 书 学 飞 鸟 乙 "
             "(丶 is not level 1) plus a `random.Random(0)` sample of those common chars, 800 in total, sorted by "
             "code point. Each font was subset with `fontTools.subset` (outlines kept; hinting and OpenType layout "
             "features dropped; `OS/2`, `BASE`, `vhea`/`vmtx`/`VORG` kept; embedded bitmaps dropped), the family "
             "renamed (name IDs 1, 2, 3, 4, 6, 16, 17 and the CFF names; copyright/licence name IDs 0, 5, 13, 14 "
             "kept). The source keeps all 800 characters. Each target *i* drops a `random.Random(i)` choice of its "
             "characters so that 15–30% of the charset is missing — these are the glyphs the GAN is meant to "
             "generate. `style06_ming_uming.ttc` is a two-face TrueType Collection (face 0 = UMing TW, face 1 = "
             "UMing CN, both with the same characters; the style uses `#1`). Noto subsets stay CFF `.otf`, the "
             "others are TrueType. Style 12 is the handwriting style (SetoFont) used by the demo.\n")
    L.append("Not used: cwTeX fonts (GPL, and only ~68% of GB2312 level 1: traditional-only repertoire; so no "
             "fangsong or yuan/rounded style is included), Klee One (~67%), HanaMinB (ext-B only), WenQuanYi "
             "Zen Hei (GPL; Micro Hei, Apache-2.0, covers the hei style).\n")
    with open(os.path.join(OUT, "README.md"), "w", encoding="utf-8") as fh:
        fh.write("\n".join(L))
    print("\n".join(L[L.index("## Target styles\n"):]))


if __name__ == "__main__":
    sys.exit(main())
