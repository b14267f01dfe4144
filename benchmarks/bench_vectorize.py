"""Benchmark fontgen's tracer against potrace on real CJK glyphs.

For 20 glyphs (永国龍書鬱口回圓一乙丶田目家愛學體驗飛鳥, those the font has) of 2 fonts,
rendered anti-aliased at a 256 px em box:

- fidelity: IoU between the ink (anti-aliased render >= 50%) and the traced outline
  rasterised at 4x4 supersampling (>= 50% coverage). This is the headline number, but
  it has a bias: an edge anywhere in the middle quarter of a pixel column covers 8 of
  its 16 samples, a tie that counts as ink, so a sub-pixel-accurate outline whose edge
  lies just past the pixel centre (true coverage 0.4-0.5, not ink in the image) is
  charged a whole row of pixels, while a tracer of the 1-bit image (potrace) puts its
  edges on pixel boundaries and never ties. "IoU fine" measures the same with 16x16
  samples and the image's own threshold (coverage >= 128/255), close to what FreeType
  renders from the font;
- points per glyph: TrueType points (on + off curve) as stored in glyf, for both
  tracers (potrace's cubics go through cu2qu; fontgen fits quadratic splines directly,
  whose implied on-curve points are not stored);
- ms per glyph of CPU time on one core (process CPU time for fontgen, the potrace
  child processes' CPU time, start-up included, for potrace; CPU time rather than wall
  time because benchmark machines are shared).

potrace (Debian package `potrace`) traces the 1-bit image (ink >= 50%) written as PBM,
`potrace -b svg` with its defaults; all glyphs of a font in one invocation, so process
start-up is spread over them. Without the binary its columns are skipped (with
--install-potrace, running as root, the bench runs `apt-get install -y potrace`).

    python benchmarks/bench_vectorize.py [--json out.json] [--size 256] [--font FONT ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fontgen import tracing as V  # noqa: E402
from fontgen.fonts import FontSpec, Geometry, GlyphRenderer, coverage, open_font  # noqa: E402

CHARS = "永国龍書鬱口回圓一乙丶田目家愛學體驗飛鳥"
SAMPLE = ROOT / "fonts_sample"
# fonts_sample subsets lack the traditional characters: a Debian font extracted under
# /tmp (apt-get download + dpkg -x) is preferred when it covers more of them.
CANDIDATES = [
    [SAMPLE / "source_sans_regular.otf",
     Path("/tmp/fs_x/fonts-noto-cjk/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc#2")],
    [SAMPLE / "style07_kai_ukai.ttf",
     Path("/tmp/fs_x/fonts-arphic-ukai/usr/share/fonts/truetype/arphic/ukai.ttc")],
]


def pick_fonts(explicit: list[str]) -> list[FontSpec]:
    if explicit:
        return [FontSpec.parse(f) for f in explicit]
    fonts = []
    for options in CANDIDATES:
        best, best_n = None, -1
        for cand in options:
            spec = FontSpec.parse(str(cand))
            if not spec.path.is_file():
                continue
            n = len(coverage(open_font(spec), CHARS).present)
            if n > best_n:
                best, best_n = spec, n
        if best is not None:
            fonts.append(best)
    return fonts


def ensure_potrace(install: bool) -> str | None:
    exe = shutil.which("potrace")
    if exe or not install:
        return exe
    if os.geteuid() != 0:
        print("note: --install-potrace needs root; skipping potrace", file=sys.stderr)
        return None
    subprocess.run(["apt-get", "install", "-y", "potrace"], check=False, capture_output=True)
    return shutil.which("potrace")


_TOKEN = re.compile(r"[MmLlCcZz]|-?\d+(?:\.\d+)?")


def parse_potrace_svg(text: str, height: int) -> list[list[np.ndarray]]:
    """Contours (lists of line/cubic segments in pixels, y down) from potrace's SVG."""
    m = re.search(r'translate\(([-\d.]+),([-\d.]+)\)\s*scale\(([-\d.]+),([-\d.]+)\)', text)
    tx, ty, sx, sy = (float(v) for v in m.groups()) if m else (0.0, float(height), 0.1, -0.1)
    contours = []
    for d in re.findall(r'\sd="([^"]*)"', text):
        toks = _TOKEN.findall(d)
        i, cmd = 0, None
        cur = start = np.zeros(2)
        segs: list[np.ndarray] = []

        def num():
            nonlocal i
            i += 1
            return float(toks[i - 1])

        while i < len(toks):
            if toks[i] in "MmLlCcZz":
                cmd = toks[i]
                i += 1
                if cmd in "Zz":
                    if segs:
                        if np.hypot(*(cur - start)) > 1e-9:
                            segs.append(np.array([cur, start]))
                        contours.append(segs)
                    segs, cur = [], start
                    continue
            if cmd in "Mm":
                p = np.array([num(), num()])
                cur = start = p if cmd == "M" else cur + p
                cmd = "l" if cmd == "m" else "L"
            elif cmd in "Ll":
                p = np.array([num(), num()])
                p = cur + p if cmd == "l" else p
                segs.append(np.array([cur, p]))
                cur = p
            elif cmd in "Cc":
                pts = [np.array([num(), num()]) for _ in range(3)]
                if cmd == "c":
                    pts = [cur + q for q in pts]
                segs.append(np.array([cur] + pts))
                cur = pts[-1]
        if segs:
            contours.append(segs)
    out = []
    for segs in contours:
        out.append([np.column_stack([tx + sx * s[:, 0], ty + sy * s[:, 1]]) for s in segs])
    return out


def fidelity(contours_px: list, image: np.ndarray) -> float:
    cov = V.rasterize_polygons([V.flatten_contour(c) for c in contours_px], image.shape[0], 4)
    return V.ink_iou(image < 128, cov >= 0.5)


def fidelity_fine(contours_px: list, image: np.ndarray) -> float:
    """IoU with 16x16 samples per pixel and the image's threshold (no 4x4 tie bias)."""
    cov = V.rasterize_polygons([V.flatten_contour(c) for c in contours_px], image.shape[0], 16)
    return V.ink_iou(image < 128, cov >= 128 / 255)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_font(spec: FontSpec, size: int, potrace: str | None, opts: V.TraceOptions,
               repeat: int = 1) -> dict:
    font = open_font(spec)
    chars = coverage(font, CHARS).present
    renderer = GlyphRenderer(spec, Geometry.for_font(font, size))
    images = {ch: renderer.render(ch) for ch in chars}
    ours = {"iou": [], "iou_fine": [], "points": [], "ms": []}
    for ch, img in images.items():
        V.trace_quadratic_px(img, opts)  # warm-up per glyph keeps timings about the steady state
        t = time.process_time()
        for _ in range(repeat):
            contours = V.trace_quadratic_px(img, opts)
        ours["ms"].append((time.process_time() - t) * 1000 / repeat)
        ours["iou"].append(fidelity(contours, img))
        ours["iou_fine"].append(fidelity_fine(contours, img))
        ours["points"].append(sum(len(c) for c in contours))
    row = {"font": str(spec), "glyphs": len(chars), "chars": "".join(chars),
           "fontgen": {k: float(np.mean(v)) for k, v in ours.items()} | {"iou_worst": float(np.min(ours["iou"]))}}
    if potrace:
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for i, (ch, img) in enumerate(images.items()):
                bits = (img < 128).astype(np.uint8)
                path = Path(tmp) / f"g{i:02d}.pbm"
                path.write_bytes(f"P4\n{size} {size}\n".encode() + np.packbits(bits, axis=1).tobytes())
                files.append(path)
            t, w = _children_cpu(), time.perf_counter()
            for _ in range(repeat):
                subprocess.run([potrace, "-b", "svg", *map(str, files)], check=True, capture_output=True)
            ms = (_children_cpu() - t) * 1000 / len(files) / repeat
            wall = (time.perf_counter() - w) * 1000 / len(files) / repeat
            pt = {"iou": [], "iou_fine": [], "points": []}
            for path, img in zip(files, images.values()):
                curves = parse_potrace_svg(path.with_suffix(".svg").read_text(), size)
                contours = [V._quadratic_contour(segs, opts.quad_error) for segs in curves]
                pt["iou"].append(fidelity(contours, img))
                pt["iou_fine"].append(fidelity_fine(contours, img))
                pt["points"].append(sum(len(c) for c in contours))
        row["potrace"] = {"iou": float(np.mean(pt["iou"])), "iou_worst": float(np.min(pt["iou"])),
                          "iou_fine": float(np.mean(pt["iou_fine"])),
                          "points": float(np.mean(pt["points"])), "ms": ms, "ms_wall": wall}
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--font", action="append", default=[], help="Font (path or path#N); repeatable.")
    ap.add_argument("--json", type=Path, help="Also write the results as JSON here.")
    ap.add_argument("--install-potrace", action="store_true", help="apt-get install potrace if missing (root).")
    ap.add_argument("--fit-error", type=float, default=V.TraceOptions().fit_error)
    ap.add_argument("--repeat", type=int, default=3, help="Timed repetitions per glyph (CPU time is averaged).")
    args = ap.parse_args(argv)
    opts = V.TraceOptions(fit_error=args.fit_error)
    potrace = ensure_potrace(args.install_potrace)
    fonts = pick_fonts(args.font)
    if not fonts:
        print("no fonts found (fonts_sample/ missing?)", file=sys.stderr)
        return 1
    rows = [bench_font(f, args.size, potrace, opts, max(1, args.repeat)) for f in fonts]
    print(f"\nVectorization at a {args.size} px em box, 4x supersampled fidelity, one core "
          f"(fit error {opts.fit_error} px)\n")
    print("| font | glyphs | tracer | IoU mean | IoU worst | IoU fine | points/glyph | CPU ms/glyph |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        for tracer in ("fontgen", "potrace"):
            if tracer in r:
                m = r[tracer]
                print(f"| {Path(r['font'].split('#')[0]).name} | {r['glyphs']} | {tracer} | {m['iou']:.4f} | "
                      f"{m['iou_worst']:.4f} | {m['iou_fine']:.4f} | {m['points']:.0f} | {m['ms']:.1f} |")
    if not potrace:
        print("\npotrace not installed: its columns are skipped (apt-get install potrace, or --install-potrace)")
    if args.json:
        args.json.write_text(json.dumps({"size": args.size, "fit_error": opts.fit_error, "rows": rows},
                                        indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
