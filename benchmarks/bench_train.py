"""Training throughput: images/s end to end (data included), peak memory, FLOPs per image.

Runs `fontgen.train` itself (the same Trainer the CLI uses) for --warmup + --steps steps
on a dataset folder (--data) or on a synthetic one made here in a second or two, then
counts the FLOPs of one more training step (G forward, D step, G step: everything the
loop does per step) with torch.utils.flop_counter.FlopCounterMode.

    python benchmarks/bench_train.py [--image-size 64] [--batch-size 16] [--steps 10] [--device auto]
                                     [--ngf 64] [--bf16] [--compile] [--data DIR] [--json out.json]

The perceptual loss (default weight 0.02) runs with randomly initialised VGG16 weights
written to a temporary --vgg-weights file: the cost is that of the pretrained network.
Peak memory: CUDA max_memory_allocated, or on a CPU the process's max RSS (torch included).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def synthetic_dataset(out: Path, size: int, chars: int = 256, styles: int = 4, seed: int = 0) -> Path:
    """A dataset folder of random stroke glyphs (source + `styles` stroke-width variants)."""
    from fontgen import dataset
    from fontgen.fonts import Geometry

    rng = np.random.default_rng(seed)
    writer = dataset.DatasetWriter(out, size, chars, chars * styles)
    yy, xx = np.mgrid[0:size, 0:size]
    strokes = []
    for c in range(chars):  # a few random horizontal/vertical bars per character
        bars = []
        for _ in range(rng.integers(3, 7)):
            horizontal = rng.random() < 0.5
            a, b = sorted(rng.integers(size // 8, size - size // 8, 2))
            pos = rng.integers(size // 8, size - size // 8)
            bars.append((horizontal, a, max(b, a + size // 8), pos))
        strokes.append(bars)

    def draw(bars, width):
        img = np.full((size, size), 255, np.uint8)
        for horizontal, a, b, pos in bars:
            if horizontal:
                img[(abs(yy - pos) <= width) & (xx >= a) & (xx <= b)] = 0
            else:
                img[(abs(xx - pos) <= width) & (yy >= a) & (yy <= b)] = 0
        return img

    writer["codepoints"][:] = np.arange(0x4E00, 0x4E00 + chars)
    for c in range(chars):
        writer["source"][c] = draw(strokes[c], max(1, size // 64))
    p = 0
    for s in range(styles):
        for c in range(chars):
            writer["images"][p] = draw(strokes[c], max(1, size // 64) * (s + 1))
            writer["pair_char"][p], writer["pair_style"][p] = c, s
            writer["pair_split"][p] = dataset.split_is_val(0x4E00 + c, s, 0.1, 0)
            p += 1
    geometry = Geometry(size, 1000, size / 1000, 0.0, 0.88 * size, 880.0, -120.0, "synthetic").to_dict()
    font = {"path": "synthetic", "face": 0, "family": "synthetic", "sha256": "0" * 64, "geometry": geometry}
    writer.commit({
        "format": dataset.FORMAT, "version": dataset.VERSION, "image_size": size, "margin": 0.0,
        "source": font, "styles": [{"id": s, "name": f"synthetic-{s}", **font} for s in range(styles)],
        "charset": {"name": "synthetic", "requested": chars, "chars": chars},
        "split": {"val_fraction": 0.1, "seed": 0},
    })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="dataset folder (default: a synthetic one at --image-size)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--data-size", type=int, default=None,
                        help="image size of the synthetic dataset (default: --image-size; else resized on the device)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--preset", default="full", choices=["full", "cpu"],
                        help="the training options the step runs with (default full: the GPU product)")
    parser.add_argument("--ngf", type=int, default=None, help="default: the preset's (full 64, cpu 16)")
    parser.add_argument("--ndf", type=int, default=None, help="default: --ngf with the full preset, the cpu preset's 8")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bf16 autocast (default: fontgen's: on CUDA and on a CPU with bf16 hardware)")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--perceptual-weight", type=float, default=0.02)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: fontgen's)")
    parser.add_argument("--competing", type=int, default=0,
                        help="busy processes (one core each) running during the measurement: a shared machine")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args()

    from torch.utils.flop_counter import FlopCounterMode

    from fontgen.losses import vgg16_features
    from fontgen.train import TrainConfig, Trainer

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    data = args.data or synthetic_dataset(tmp / "data", args.data_size or args.image_size)
    vgg = None
    if args.perceptual_weight > 0:
        vgg = tmp / "vgg16-random.pt"
        torch.save(vgg16_features(pretrained=False).state_dict(), vgg)
    total = args.warmup + args.steps
    ndf = args.ndf or (args.ngf if args.preset == "full" else None)
    config = TrainConfig(data=data, runs_dir=tmp / "runs", run=tmp / "runs" / "bench", preset=args.preset,
                         device=args.device, steps=total, batch_size=args.batch_size, image_size=args.image_size,
                         ngf=args.ngf, ndf=ndf, perceptual_weight=args.perceptual_weight,
                         vgg_weights=vgg, bf16=args.bf16, compile=args.compile, sample_every=10**9,
                         checkpoint_every=10**9, progress=False, threads=args.threads)
    trainer = Trainer(config, log=None)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.competing)]
    try:
        trainer.run()
    finally:
        for proc in busy:
            proc.kill()
    log = [json.loads(line) for line in (tmp / "runs" / "bench" / "log.jsonl").read_text().splitlines()]
    timed = log[args.warmup:]
    seconds = sum(trainer.global_batch / r["images_per_s"] for r in timed)
    images_per_s = trainer.global_batch * len(timed) / seconds
    cuda = trainer.device.type == "cuda"
    if cuda:
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # FLOPs of one more full training step
    rows = trainer.feed.batch_rows(total)
    batch = trainer.feed.to_device(*trainer.feed.load_rows(rows))
    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step(total, *batch)
    gflop_per_image = counter.get_total_flops() / len(rows) / 1e9

    from fontgen.model import count_parameters

    result = {
        "device": (torch.cuda.get_device_name(trainer.device) if cuda else
                   f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"),
        "image_size": args.image_size, "batch_size": args.batch_size, "ngf": trainer.model_config.ngf, "ndf": trainer.model_config.ndf, "preset": args.preset,
        "bf16": trainer.bf16, "compile": args.compile, "perceptual_weight": args.perceptual_weight,
        "steps_timed": len(timed), "images_per_s": round(images_per_s, 2),
        "ms_per_step": round(1000 * seconds / len(timed), 1), "gflop_per_image": round(gflop_per_image, 3),
        "tflop_per_s": round(gflop_per_image * images_per_s / 1000, 3),
        "peak_memory_mib": round(peak_mib, 1), "peak_memory_kind": "cuda allocated" if cuda else "max RSS",
        "g_params_m": round(count_parameters(trainer.G_raw) / 1e6, 2),
        "d_params_m": round(count_parameters(trainer.D_raw) / 1e6, 2),
        "data": "synthetic" if args.data is None else str(args.data), "torch": str(torch.__version__),
        "threads": torch.get_num_threads(), "competing": args.competing,
    }
    print("| device | px | batch | ngf/ndf | bf16 | compile | images/s | ms/step | GFLOP/img/step | achieved TFLOP/s "
          "| peak memory |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {result['device']} | {args.image_size} | {args.batch_size} | {result['ngf']}/{result['ndf']} "
          f"| {'yes' if result['bf16'] else 'no'} | {'yes' if args.compile else 'no'} | {result['images_per_s']:.1f} "
          f"| {result['ms_per_step']:.0f} | {result['gflop_per_image']:.2f} | {result['tflop_per_s']:.3f} "
          f"| {result['peak_memory_mib']:.0f} MiB ({result['peak_memory_kind']}) |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(bench_train: {time.perf_counter() - started:.0f}s)", file=sys.stderr)
