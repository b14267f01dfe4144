"""Generate throughput: glyphs/s end to end (render the sources, run G, write PNGs + manifest).

A full-size model (256 px, ngf 64) trained for one step stands in for a trained one: the
cost of inference does not depend on the weights.

    python benchmarks/bench_generate.py [--device cpu|cuda] [--glyphs 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from rows import emit_rows  # noqa: E402  (benchmarks/, the script's folder, is on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--glyphs", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ensemble", action=argparse.BooleanOptionalAction, default=True,
                        help="the default drawing, the mean of five passes of G (--no-ensemble: one pass)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from fontgen.generate import GenerateJob, generate_glyphs
    from fontgen.render import default_job, render_dataset
    from fontgen.train import TrainConfig, train

    work = Path(tempfile.mkdtemp())
    job = default_job(work / "data", image_size=args.size, workers=os.cpu_count() or 1)
    sample_chars = job.chars
    job.chars = job.chars[:40]
    render_dataset(job, progress=False, log=lambda line: None)
    checkpoint = train(TrainConfig(data=work / "data", runs_dir=work / "runs", run=work / "runs" / "bench",
                                   preset="full", device=args.device, steps=1, batch_size=2,
                                   perceptual_weight=0.0, progress=False), log=lambda line: None)
    # fonts_sample's source covers its 800 characters; larger goals (3,755) are extrapolated from glyphs/s
    chars = sample_chars[:args.glyphs]
    job = GenerateJob(checkpoint=checkpoint, style="12", out=work / "generated", chars=chars,
                      batch_size=args.batch_size, device=args.device, ensemble=args.ensemble)
    generate_glyphs(GenerateJob(checkpoint=checkpoint, style="12", out=work / "warm", chars=chars[:8],
                                device=args.device), progress=False, log=lambda line: None)  # warm-up
    start = time.perf_counter()
    report = generate_glyphs(job, progress=False, log=lambda line: None)
    seconds = time.perf_counter() - start
    if args.device == "cuda":
        machine = torch.cuda.get_device_name()
    else:
        machine = f"{platform.machine()} {os.cpu_count()} cores (CPU, {torch.get_num_threads()} threads)"
    rate = report.glyphs / seconds
    row = {"step": "generate", "machine": machine,
           "figure": f"glyphs/s end to end (render sources, G {'x5 (the default drawing)' if args.ensemble else 'x1'}, "
                     f"PNGs), {args.size}px, ngf 64, batch {args.batch_size}, "
                     f"{report.glyphs} glyphs",
           "value": round(rate, 1), "unit": "glyphs/s"}
    if args.device == "cuda":
        row["figure"] += f"; 3,755 glyphs would take {3755 / rate:.1f} s"
        row.update(anchor="goal: 3,755 glyphs in < 10 s (375.5 glyphs/s)", ratio=round(rate / 375.5, 2))
    emit_rows([row], args.json)


if __name__ == "__main__":
    main()
