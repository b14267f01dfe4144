"""`fontgen evaluate`: quality on held-out characters (present in the target font, kept out of training)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fontgen.dataset import load_dataset
from fontgen.errors import FontgenError
from fontgen.files import check_output_folder, temp_path
from fontgen.generate import Generation
from fontgen.images import from_model, glyph_sheet, to_model
from fontgen.metrics import METRICS, all_metrics

# Which way is better, for the table and for picking the worst glyphs.
HIGHER_IS_BETTER = {"l1": False, "rmse": False, "ssim": True, "iou": True}


@dataclass
class EvaluateJob:
    checkpoint: Path
    out: Path | None = None  # default: RUN/eval (RUN/eval-DATA for another dataset than the trained one)
    data: Path | None = None  # default: the dataset the checkpoint was trained on
    force: bool = False  # write into an --out folder that fontgen did not write
    batch_size: int = 64
    device: str = "auto"
    worst: int = 24


def evaluate_checkpoint(job: EvaluateJob, progress: bool = True, log=print) -> dict:
    generation = Generation(job.checkpoint, job.device)
    data_dir = job.data or generation.meta.get("dataset")
    if not data_dir:
        raise FontgenError("the checkpoint does not name its dataset; pass --data")
    data = load_dataset(Path(data_dir))
    check_same_fonts(generation.meta, data)
    trained_on = generation.meta.get("dataset")
    same_data = bool(trained_on) and Path(trained_on).resolve() == data.root.resolve()
    out = job.out or Path(job.checkpoint).parent / ("eval" if same_data else f"eval-{data.root.resolve().name}")
    out = check_output_folder(out, "eval", job.force)
    val = data.pair_indices("val")
    if len(val) == 0:
        raise FontgenError(f"{data.root} has no validation pairs; render with --val-fraction > 0")
    pair_style = np.asarray(data.pair_style)[val]
    pair_char = np.asarray(data.pair_char)[val]
    results: dict = {"format": "fontgen-eval", "checkpoint": str(job.checkpoint), "step": generation.meta.get("step"),
                     "dataset": str(data.root), "image_size": generation.image_size, "styles": {}}
    per_glyph = []  # (style, char row, pair row, generated, truth, metrics)
    all_scores: dict[str, list] = {name: [] for name in METRICS}
    for style in data.styles:
        rows = np.nonzero(pair_style == style.id)[0]
        if len(rows) == 0:
            continue
        order = np.argsort(pair_char[rows], kind="stable")
        rows = rows[order]
        pairs = val[rows]
        sources = data.source[pair_char[rows]]
        generated = generation.run(sources, {style.id: 1.0}, job.batch_size)
        truth = from_model(to_model(data.images[pairs], generation.image_size, "cpu"))
        scores = all_metrics(generated, truth)
        results["styles"][str(style.id)] = {"name": style.name, "glyphs": int(len(rows)),
                                            **{k: float(v.mean()) for k, v in scores.items()}}
        for name in METRICS:
            all_scores[name].append(scores[name])
        for i in range(len(rows)):
            per_glyph.append((style.id, int(pair_char[rows[i]]), generated[i], truth[i],
                              {k: float(v[i]) for k, v in scores.items()}))
        if progress:
            log(f"style {style.id:>2} {style.name}: {len(rows)} held-out glyphs, IoU {scores['iou'].mean():.3f}")
    joined = {k: np.concatenate(v) for k, v in all_scores.items()}
    results["overall"] = {"glyphs": int(len(joined["l1"])), **{k: float(v.mean()) for k, v in joined.items()}}
    out.mkdir(parents=True, exist_ok=True)
    per_glyph.sort(key=lambda g: g[4]["iou"])
    write_worst(out / "worst.png", per_glyph[:job.worst])
    _write_json(out / "metrics.json", results)
    results["out"] = str(out)
    return results


def check_same_fonts(meta: dict, data) -> None:
    """Refuse a dataset whose fonts are not the ones the checkpoint learnt (style id -> font file)."""
    trained = {int(s["id"]): s for s in meta.get("styles", [])}
    problems = []
    source = meta.get("source") or {}
    if source.get("sha256") and (source["sha256"], int(source.get("face", 0))) != \
            (data.source_font.sha256, data.source_font.face):
        problems.append(f"its source font is {data.source_font.path}, the model's was {source.get('path')}")
    for style in data.styles:
        mine = trained.get(style.id)
        if mine is None:
            problems.append(f"style {style.id} is not in the checkpoint's style table")
        elif mine.get("sha256") and (mine["sha256"], int(mine.get("face", 0))) != (style.font.sha256, style.font.face):
            problems.append(f"style {style.id} is {style.font.path} there but {mine.get('path')} in the model")
    if problems:
        raise FontgenError(f"{data.root} was not rendered from the fonts the model was trained with "
                           f"({'; '.join(problems[:3])}{'; ...' if len(problems) > 3 else ''}); its scores would "
                           "be meaningless. Evaluate on the training dataset, or render one with the same fonts")


def _write_json(path: Path, payload: dict) -> None:
    tmp = temp_path(path)
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def write_worst(path: Path, glyphs: list) -> None:
    """The worst glyphs by IoU: generated over ground truth, with style and IoU."""
    tiles = [[generated, truth] for _, _, generated, truth, _ in glyphs]
    captions = [f"s{style_id} {scores['iou']:.2f}" for style_id, _, _, _, scores in glyphs]
    glyph_sheet(tiles, captions, stack="vertical").save(path)


def format_table(results: dict, other: dict | None = None) -> str:
    """A plain-text table per style and overall; with `other`, both runs side by side."""
    names = list(METRICS)
    runs = [results] + ([other] if other else [])
    header = f"{'style':<28}{'glyphs':>7}" + "".join(
        f"{name.upper() + (' ' + tag if other else ''):>{12 if other else 9}}" for name in names
        for tag in (["A", "B"] if other else [""]))
    lines = [header, "-" * len(header)]
    keys = list(results["styles"]) + ["overall"]
    for key in keys:
        entries = [r["overall"] if key == "overall" else r["styles"].get(key) for r in runs]
        if entries[0] is None:
            continue
        label = "overall" if key == "overall" else f"{key} {entries[0]['name']}"
        cells = ""
        for name in names:
            for entry in entries:
                value = "-" if entry is None else f"{entry[name]:.4f}"
                cells += f"{value:>{12 if other else 9}}"
        lines.append(f"{label[:27]:<28}{entries[0]['glyphs']:>7}{cells}")
    arrows = ", ".join(f"{n.upper()} {'higher' if HIGHER_IS_BETTER[n] else 'lower'} is better" for n in names)
    lines.append(f"({arrows}; pixels in [0, 1]; IoU of ink darker than 50%)")
    return "\n".join(lines)
