"""Render throughput on fonts_sample/ at 256 px: fontgen (1 and 2 workers) vs the usual zi2zi recipe.

The zi2zi recipe (font2img): draw each character on a 2x canvas, crop to its ink bounding
box, resize it to fit the cell, paste, and save one PNG per (source, target) pair. It is
timed here on the same fonts and machine, so the ratio is like for like.

    python benchmarks/bench_render.py [--chars 800] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rows import emit_rows  # noqa: E402  (benchmarks/, the script's folder, is on sys.path)


def fontgen_run(workers: int, chars: int, size: int) -> dict:
    """One render in a child process, so peak memory is that of the render alone."""
    code = f"""
import json, sys, tempfile, time
from pathlib import Path
from fontgen.render import default_job, render_dataset
out = Path(tempfile.mkdtemp()) / "data"
job = default_job(out, image_size={size}, workers={workers})
job.chars = job.chars[:{chars}]
t = time.perf_counter()
report = render_dataset(job, progress=False, log=lambda line: None)
seconds = time.perf_counter() - t
print(json.dumps({{"glyphs": report.chars + report.pairs, "pairs": report.pairs, "seconds": seconds}}))
"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = max(peak_kb, before) / 1024
    return result


def zi2zi_recipe(chars: int, size: int, pairs_wanted: int) -> dict:
    """The usual font2img recipe, one process, one PNG per pair."""
    from PIL import Image, ImageDraw, ImageFont

    from fontgen.render import default_job

    job = default_job(Path("unused"))
    text = job.chars[:chars]
    source = ImageFont.truetype(str(job.source.path), size=int(size * 0.9), index=job.source.face)
    targets = [ImageFont.truetype(str(t.spec.path), size=int(size * 0.9), index=t.spec.face) for t in job.targets]

    def draw_fitted(font, ch):
        canvas = Image.new("L", (size * 2, size * 2), 255)
        ImageDraw.Draw(canvas).text((size // 2, size // 2), ch, font=font, fill=0)
        bbox = Image.eval(canvas, lambda v: 255 - v).getbbox()
        cell = Image.new("L", (size, size), 255)
        if bbox is None:
            return cell
        glyph = canvas.crop(bbox)
        scale = (size * 0.9) / max(glyph.size)
        glyph = glyph.resize((max(1, int(glyph.width * scale)), max(1, int(glyph.height * scale))), Image.BICUBIC)
        cell.paste(glyph, ((size - glyph.width) // 2, (size - glyph.height) // 2))
        return cell

    done = 0
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for target_index, target in enumerate(targets):
            for i, ch in enumerate(text):
                pair = Image.new("L", (size * 2, size), 255)
                pair.paste(draw_fitted(target, ch), (0, 0))
                pair.paste(draw_fitted(source, ch), (size, 0))
                pair.save(os.path.join(folder, f"{target_index}_{i:05d}.png"))
                done += 1
                if done >= pairs_wanted:
                    return {"pairs": done, "seconds": time.perf_counter() - start}
        return {"pairs": done, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chars", type=int, default=800)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--recipe-pairs", type=int, default=600, help="pairs the zi2zi recipe renders")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    machine = f"{platform.machine()} {os.cpu_count()} cores (CPU)"
    rows = []
    recipe = zi2zi_recipe(args.chars, args.size, args.recipe_pairs)
    recipe_rate = recipe["pairs"] / recipe["seconds"]
    rows.append({"step": "render", "machine": machine, "figure": f"zi2zi recipe pairs/s, 1 process, {args.size}px",
                 "value": round(recipe_rate, 1), "unit": "pairs/s", "anchor": "~80 pairs/s (anchors.md)"})
    for workers in (1, 2):
        run = fontgen_run(workers, args.chars, args.size)
        # a pair = one target glyph (+ a share of the source glyph, stored once per character)
        pair_rate = run["pairs"] / run["seconds"]
        rows.append({"step": "render", "machine": machine,
                     "figure": f"fontgen pairs/s, {workers} worker(s), {args.size}px, {run['pairs']} pairs "
                               f"({run['glyphs'] / run['seconds']:.0f} glyphs/s)",
                     "value": round(pair_rate, 1), "unit": "pairs/s",
                     "anchor": f"{recipe_rate:.0f} pairs/s (zi2zi recipe, same machine)",
                     "ratio": round(pair_rate / recipe_rate, 1), "peak_rss_mib": round(run["peak_rss_mib"], 1)})
    emit_rows(rows, args.json)


if __name__ == "__main__":
    main()
