"""CFF output vs the TrueType path on the same glyphs (issue 13).

For real glyphs of fonts_sample fonts rendered at a 256 px em box (the product path:
a generated-glyph folder -> `vectorize_folder`), writes the same folder as a standalone
.ttf (quadratic splines) and .otf (cubic Béziers fitted directly, CFF), and merges it into
the CID-keyed CFF sample font both ways (CFF kept / --to-truetype). Reports points per
glyph (TrueType: on + off-curve points stored in glyf; CFF: on-curve points plus two
control points per cubic), the FreeType render-back IoU of `verify_font`, the cubic
fit's worst distance from a traced point (px) and wall ms per glyph (one worker).

    python benchmarks/bench_cff.py [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from rows import emit_rows  # noqa: E402  (benchmarks/, the script's folder, is on sys.path)
sys.path.insert(0, str(ROOT / "tests"))

from fontgen import cubic  # noqa: E402
from fontgen import vectorize as V  # noqa: E402
from fontgen.fonts import FontSpec, open_font  # noqa: E402

CHARS = "口回国永田一家飞日目四图八雨乡主鸟"  # in every sample font (tests/test_vectorize.py ROUND_TRIP)
SAMPLE = ROOT / "fonts_sample"
FONTS = ["source_sans_regular.otf", "style04_serif_bold.otf", "style07_kai_ukai.ttf"]
MERGE_TARGET = "style00_sans_thin.otf"


def main() -> None:
    from test_vectorize import write_folder

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    V.warm_up()
    cubic.trace_cubic_px(__import__("numpy").full((8, 8), 255, "uint8"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in FONTS:
            cmap = open_font(FontSpec(SAMPLE / name)).getBestCmap()
            chars = "".join(ch for ch in CHARS if ord(ch) in cmap)
            folder = tmp / Path(name).stem
            write_folder(name, chars, folder)
            for ext in (".ttf", ".otf"):
                cubic.fit_stats(reset=True)
                t = time.perf_counter()
                r = V.vectorize_folder(folder, out=tmp / f"{Path(name).stem}{ext}", workers=1, progress=False)
                ms = (time.perf_counter() - t) * 1000 / r.glyphs
                rows.append({"font": name, "output": "CFF (cubic)" if ext == ".otf" else "TrueType (quadratic)",
                             "glyphs": r.glyphs, "points_per_glyph": round((r.on_points + r.off_points) / r.glyphs, 1),
                             "iou_mean": round(r.iou_mean, 4), "iou_worst": round(r.iou_worst, 4),
                             "cubic_worst_px": round(cubic.fit_stats()["worst"], 3) if ext == ".otf" else None,
                             "ms_per_glyph_end_to_end": round(ms, 1)})
        folder = tmp / "merge"  # the source font's glyphs replace the thin sans' own (--replace)
        src = open_font(FontSpec(SAMPLE / FONTS[0])).getBestCmap()
        write_folder(FONTS[0], "".join(ch for ch in CHARS if ord(ch) in src), folder)
        for to_tt in (False, True):
            r = V.vectorize_folder(folder, out=tmp / ("m.ttf" if to_tt else "m.otf"), merge_into=str(SAMPLE / MERGE_TARGET),
                                   replace=True, workers=1, progress=False, to_truetype=to_tt)
            rows.append({"font": f"merge into {MERGE_TARGET} (CID-keyed)",
                         "output": "--to-truetype" if to_tt else "CFF kept", "glyphs": r.glyphs,
                         "points_per_glyph": round((r.on_points + r.off_points) / r.glyphs, 1),
                         "iou_mean": round(r.iou_mean, 4), "iou_worst": round(r.iou_worst, 4),
                         "existing_glyphs_unchanged": any("byte for byte unchanged" in n for n in r.notes)})
    emit_rows(rows, args.json)


if __name__ == "__main__":
    main()
