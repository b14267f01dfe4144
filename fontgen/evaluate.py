"""`fontgen evaluate`: quality on held-out characters (present in the target font, kept out of training).

Two sets of figures (DESIGN.md "Quality and speed are measured"):

- model size: the drawing (as generate draws it before the repair: the mean of five placements,
  the sources aligned, blended with the font's own glyphs, none of the held-out characters lent)
  against the real glyph at the model's resolution (L1, RMSE, SSIM, IoU), as in the papers;
- display size: the product's own path. The glyph `fontgen generate` draws by default
  (deterministic, dropout off, broken strokes joined by fontgen.repair unless --no-repair, its ink
  calibrated by images.calibrate_ink) is
  traced as `fontgen vectorize` traces it by default, its
  outline drawn at 256 px in the target font's em box and compared with the real glyph that
  FreeType draws from the target font in the same em box: IoU, SSIM, L1, pieces (shares of
  glyphs whose ink falls into more / fewer pieces than the real glyph's) and the outline
  length ratio. The same path run on the real glyph at model size gives a reference: what
  a perfect model would score at that resolution.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fontgen.dataset import load_dataset
from fontgen.errors import FontgenError
from fontgen.files import check_output_folder, temp_path
from fontgen.generate import Generation
from fontgen.images import from_model, glyph_sheet, to_model
from fontgen.metrics import DISPLAY_METRICS, DISPLAY_SIZE, METRICS, all_metrics, display_metrics, speck_area

if TYPE_CHECKING:
    from fontgen.tracing import TraceOptions

# Which way is better, for the table and for picking the worst glyphs.
HIGHER_IS_BETTER = {"l1": False, "rmse": False, "ssim": True, "iou": True}
DISPLAY_HEADERS = {"iou": "IOU", "ssim": "SSIM", "l1": "L1", "pieces_more": "MORE", "pieces_fewer": "FEWER",
                   "edge_ratio": "EDGE"}


@dataclass
class EvaluateJob:
    checkpoint: Path
    out: Path | None = None  # default: RUN/eval (RUN/eval-DATA for another dataset than the trained one)
    data: Path | None = None  # default: the dataset the checkpoint was trained on
    force: bool = False  # write into an --out folder that fontgen did not write
    batch_size: int = 64
    device: str = "auto"
    worst: int = 24
    display: bool = True  # also score the product path at display size
    display_glyphs: int | None = None  # per style, evenly spread over its held-out glyphs; None = all
    display_size: int = DISPLAY_SIZE
    trace_options: TraceOptions | None = None  # None: what `fontgen vectorize` uses by default
    repair: bool = True  # display size: the glyphs as `fontgen generate` writes them (broken strokes joined)
    ensemble: bool = True  # drawn as `fontgen generate` draws them: the mean of five placements (Generation.run)
    align: bool = True  # and with several source fonts, their drawings aligned before the mean (fontgen.align)
    exemplars: bool = True  # and blended with their redrawing from the font's own glyphs, held-out ones excepted


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
    # opened before minutes of work: a moved font fails now, with nothing written
    fonts = _open_style_fonts(data.styles, job.display, job.exemplars)
    val = data.pair_indices("val")
    if len(val) == 0:
        raise FontgenError(f"{data.root} has no validation pairs; render with --val-fraction > 0")
    pair_style = np.asarray(data.pair_style)[val]
    pair_char = np.asarray(data.pair_char)[val]
    codepoints = np.asarray(data.codepoints)
    results: dict = {"format": "fontgen-eval", "checkpoint": str(job.checkpoint), "step": generation.meta.get("step"),
                     "dataset": str(data.root), "image_size": generation.image_size, "ensemble": job.ensemble,
                     "align": job.align, "exemplars": job.exemplars, "styles": {}}
    per_glyph = []  # (style, char row, pair row, generated, truth, metrics)
    held_out = []  # (style, codepoints, generated, truth) for display-size scoring
    all_scores: dict[str, list] = {name: [] for name in METRICS}
    for style in data.styles:
        rows = np.nonzero(pair_style == style.id)[0]
        if len(rows) == 0:
            continue
        order = np.argsort(pair_char[rows], kind="stable")
        rows = rows[order]
        pairs = val[rows]
        sources = data.source_views(pair_char[rows])  # every source font's drawing, as generate averages them
        generated = generation.run(sources, {style.id: 1.0}, job.batch_size, ensemble=job.ensemble, align=job.align)
        chars = [chr(int(c)) for c in codepoints[pair_char[rows]]]
        lent = 0
        if job.exemplars:  # the font lends its glyphs but none of the held-out characters
            bank = generation.exemplars(style.id, style.font.spec, exclude=chars, progress=progress)
            lent = len(bank)
            generated = generation.redraw(generated, chars, sources, bank, progress)
        truth = from_model(to_model(data.images[pairs], generation.image_size, "cpu"))
        scores = all_metrics(generated, truth)
        results["styles"][str(style.id)] = {"name": style.name, "glyphs": int(len(rows)), "exemplars": lent,
                                            **{k: float(v.mean()) for k, v in scores.items()}}
        for name in METRICS:
            all_scores[name].append(scores[name])
        for i in range(len(rows)):
            per_glyph.append((style.id, int(pair_char[rows[i]]), generated[i], truth[i],
                              {k: float(v[i]) for k, v in scores.items()}))
        if job.display:  # what `fontgen generate` writes; the model-size figures stay raw
            generated, _ = generation.finish(generated, chars, job.repair)
        held_out.append((style, codepoints[pair_char[rows]], generated, truth))
        if progress:
            log(f"style {style.id:>2} {style.name}: {len(rows)} held-out glyphs, IoU {scores['iou'].mean():.3f}")
    joined = {k: np.concatenate(v) for k, v in all_scores.items()}
    results["overall"] = {"glyphs": int(len(joined["l1"])), **{k: float(v.mean()) for k, v in joined.items()}}
    if job.display:
        results["display"], shown = score_display(generation, held_out, job, fonts, progress)
        if progress:
            d = results["display"]
            log(f"display {d['display_size']} px: {d['overall']['glyphs']} glyphs traced and scored in "
                f"{d['seconds']:.1f}s ({d['ms_per_glyph']:.0f} ms a glyph)")
    # written once everything is scored: a failure leaves no half-filled folder that blocks the rerun
    out.mkdir(parents=True, exist_ok=True)
    per_glyph.sort(key=lambda g: g[4]["iou"])
    write_worst(out / "worst.png", per_glyph[:job.worst])
    if job.display:
        write_worst_display(out / "worst-display.png", shown, job.worst)
    else:
        (out / "worst-display.png").unlink(missing_ok=True)  # never leave an older run's sheet beside these figures
    _write_json(out / "metrics.json", results)
    results["out"] = str(out)
    return results


def check_same_fonts(meta: dict, data) -> None:
    """Refuse a dataset whose fonts are not the ones the checkpoint learnt (style id -> font file)."""
    trained = {int(s["id"]): s for s in meta.get("styles", [])}
    problems = []
    sources = meta.get("sources", [])  # checkpoint_meta: the primary alone for older checkpoints
    if sources and all(s.get("sha256") for s in sources) and [(s["sha256"], int(s.get("face", 0))) for s in sources] != \
            [(f.sha256, f.face) for f in data.source_fonts]:
        problems.append(f"its source fonts are {', '.join(f.path for f in data.source_fonts)}, the model's were "
                        f"{', '.join(str(s.get('path')) for s in sources)}")
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


def _open_style_fonts(styles, display: bool = True, exemplars: bool = False) -> dict:
    """Style id -> the opened font that display scoring draws the real glyphs from and that lends
    its glyphs to the drawings; a missing one fails before any work, naming the options that skip it."""
    from fontgen.fonts import open_font

    uses = [(display, "display-size scoring draws its real glyphs", "--no-display"),
            (exemplars, "its glyphs are lent to the drawings", "--no-exemplars")]
    uses = [(why, option) for wanted, why, option in uses if wanted]
    fonts = {}
    for style in styles if uses else ():
        try:
            fonts[style.id] = open_font(style.font.spec)
        except FontgenError as exc:
            raise FontgenError(f"style {style.id}'s font is needed ({' and '.join(why for why, _ in uses)}): "
                               f"{exc}; pass {' '.join(option for _, option in uses)} to skip it") from None
    return fonts


def display_subset(count: int, limit: int | None) -> np.ndarray:
    """Indices of at most `limit` of `count` glyphs, evenly spread (all when limit is None)."""
    if limit is None or limit >= count:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max(1, limit)).round().astype(int))


def score_display(generation: Generation, held_out: list, job: EvaluateJob, fonts: dict,
                  progress: bool = True) -> tuple[dict, list]:
    """Display-size figures of the held-out glyphs (see the module docstring).

    `held_out` holds (style, codepoints, generated, truth) per style, at the model's size,
    with `generated` exactly what `fontgen generate` writes for those characters; `fonts` maps
    each style id to its opened font (_open_style_fonts). Returns the
    "display" section of metrics.json and the per-glyph records for the worst-glyph sheet:
    (style id, codepoint, real, generated outline, scores).
    """
    from tqdm import tqdm

    from fontgen.fonts import Geometry, GlyphRenderer
    from fontgen.tracing import TraceOptions, trace_for_display, warm_up

    opts = job.trace_options or TraceOptions()
    size = int(job.display_size)
    warm_up()  # compile (or load) the tracing kernels before the clock starts
    started = time.perf_counter()
    chosen = [(entry, display_subset(len(entry[1]), job.display_glyphs)) for entry in held_out]
    section: dict = {"display_size": size, "model_size": generation.image_size,
                     "glyphs_per_style_limit": job.display_glyphs, "speck_area": speck_area(size),
                     "trace_options": asdict(opts), "repair": job.repair, "styles": {}, "reference": {"styles": {}}}
    scores_all: dict[str, list] = {name: [] for name in DISPLAY_METRICS}
    reference_all: dict[str, list] = {name: [] for name in DISPLAY_METRICS}
    records = []
    total = sum(len(pick) for _, pick in chosen)
    with tqdm(total=total, unit="glyph", desc=f"display {size}px", disable=not progress, dynamic_ncols=True) as bar:
        for (style, cps, generated, truth), pick in chosen:
            spec = style.font.spec
            display = Geometry.for_font(fonts[style.id], size)  # the target font's em box, `size` px, no margin
            drawn_in = generation.output_geometry(style.id)  # the geometry `generate` writes in its manifest
            truth_in = style.font.geometry.resized(generation.image_size)
            renderer = GlyphRenderer(spec, display)
            real, drawn, reference = [], [], []
            for i in pick:
                real.append(renderer.render(chr(int(cps[i]))))
                drawn.append(trace_for_display(generated[i], drawn_in, display, opts))
                reference.append(trace_for_display(truth[i], truth_in, display, opts))
                bar.update(1)
            real, drawn, reference = np.stack(real), np.stack(drawn), np.stack(reference)
            scores = display_metrics(drawn, real)
            ref = display_metrics(reference, real)
            section["styles"][str(style.id)] = _summary(style.name, scores, size)
            section["reference"]["styles"][str(style.id)] = _summary(style.name, ref, size)
            for name in DISPLAY_METRICS:
                scores_all[name].append(scores[name])
                reference_all[name].append(ref[name])
            for j, i in enumerate(pick):
                records.append((style.id, int(cps[i]), real[j], drawn[j],
                                {k: float(v[j]) for k, v in scores.items()}))
            records = sheet_candidates(records, job.worst)  # 256 px images: keep only what the sheet may show
    section["overall"] = _summary(None, {k: np.concatenate(v) for k, v in scores_all.items()}, size)
    section["reference"]["overall"] = _summary(None, {k: np.concatenate(v) for k, v in reference_all.items()}, size)
    section["seconds"] = round(time.perf_counter() - started, 3)
    section["ms_per_glyph"] = round(1000 * section["seconds"] / max(total, 1), 2)
    return section, records


def _summary(name: str | None, scores: dict, size: int) -> dict:
    entry = {"name": name} if name is not None else {}
    entry["glyphs"] = int(len(scores["iou"]))
    entry.update({k: float(np.mean(scores[k])) for k in DISPLAY_METRICS})
    entry["display_size"] = size
    return entry


def _write_json(path: Path, payload: dict) -> None:
    tmp = temp_path(path)
    tmp.write_text(json.dumps(payload, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def write_worst(path: Path, glyphs: list) -> None:
    """The worst glyphs by IoU: generated over ground truth, with style and IoU."""
    tiles = [[generated, truth] for _, _, generated, truth, _ in glyphs]
    captions = [f"s{style_id} {scores['iou']:.2f}" for style_id, _, _, _, scores in glyphs]
    glyph_sheet(tiles, captions, stack="vertical").save(path)


def sheet_candidates(records: list, worst: int) -> list:
    """The records `worst_display` can pick from `records` and any later ones: the `worst`
    glyphs of lowest IoU with wrong piece counts and the 2 x `worst` of lowest IoU overall
    (a glyph shown for its IoU has fewer than `worst` others below it outside the first group)."""
    by_iou = sorted(records, key=lambda r: r[4]["iou"])
    wrong = [r for r in by_iou if r[4]["pieces_more"] or r[4]["pieces_fewer"]][:worst]
    keep = {id(r) for r in wrong} | {id(r) for r in by_iou[:2 * worst]}
    return [r for r in by_iou if id(r) in keep]


def worst_display(records: list, worst: int) -> list:
    """The glyphs for worst-display.png: every glyph whose ink falls into more or fewer
    pieces than the real glyph's (worst IoU first, at most `worst`), then the `worst` glyphs
    of lowest IoU among the others. A broken or merged stroke is shown even when its IoU
    looks fine."""
    by_iou = sorted(records, key=lambda r: r[4]["iou"])
    wrong = [r for r in by_iou if r[4]["pieces_more"] or r[4]["pieces_fewer"]][:worst]
    shown = {(r[0], r[1]) for r in wrong}
    return wrong + [r for r in by_iou if (r[0], r[1]) not in shown][:worst]


def write_worst_display(path: Path, records: list, worst: int = 24) -> list:
    """Display-size sheet, real | generated outline at full size. Glyphs with wrong piece
    counts come first, framed in black and captioned with both counts (see `worst_display`)."""
    chosen = worst_display(records, worst)
    tiles = [[real, drawn] for _, _, real, drawn, _ in chosen]
    captions, marked = [], []
    for style_id, cp, _, _, scores in chosen:
        wrong = bool(scores["pieces_more"] or scores["pieces_fewer"])
        text = f"s{style_id} U+{cp:04X} IoU {scores['iou']:.2f} edge {scores['edge_ratio']:.2f}"
        if wrong:
            text += f"  PIECES {int(scores['pieces_generated'])} vs {int(scores['pieces_real'])} real"
        captions.append(text)
        marked.append(wrong)
    size = tiles[0][0].shape[-1] if tiles else DISPLAY_SIZE
    glyph_sheet(tiles, captions, cell=size, columns=6, emphasised=marked).save(path)
    return chosen


def _block(runs: list[dict], names: list[str], headers: dict, extra_rows: list[tuple[str, list]] = ()) -> list[str]:
    """Rows per style and overall of `runs` (sections with "styles" and "overall"), side by side."""
    other = len(runs) > 1
    width = 12 if other else 9
    tags = ["A", "B"] if other else [""]
    header = f"{'style':<28}{'glyphs':>7}" + "".join(
        f"{headers[name] + (' ' + tag if other else ''):>{width}}" for name in names for tag in tags)
    lines = [header, "-" * len(header)]
    first = next(r for r in runs if r is not None)
    keys = [(key, None) for key in first["styles"]] + [("overall", None)] + list(extra_rows)
    for key, entries in keys:
        if entries is None:
            entries = [None if r is None else (r["overall"] if key == "overall" else r["styles"].get(key)) for r in runs]
        if all(e is None for e in entries):
            continue
        lead = next(e for e in entries if e is not None)
        label = key if key == "overall" or "name" not in lead else f"{key} {lead['name']}"
        cells = ""
        for name in names:
            for entry in entries:
                value = "-" if entry is None else f"{entry[name]:.4f}"
                cells += f"{value:>{width}}"
        lines.append(f"{label[:27]:<28}{lead['glyphs']:>7}{cells}")
    return lines


def format_table(results: dict, other: dict | None = None) -> str:
    """A plain-text table per style and overall (model size, then display size); with
    `other`, both runs side by side."""
    names = list(METRICS)
    runs = [results] + ([other] if other else [])
    lines = [f"model size ({results['image_size']} px" + (f" / {other['image_size']} px" if other else "")
             + "): generator output against the real glyph"]
    lines += _block(runs, names, {n: n.upper() for n in names})
    arrows = ", ".join(f"{n.upper()} {'higher' if HIGHER_IS_BETTER[n] else 'lower'} is better" for n in names)
    lines.append(f"({arrows}; pixels in [0, 1]; IoU of ink darker than 50%)")
    displays = [r.get("display") for r in runs]
    if any(d is not None for d in displays):
        size = next(d for d in displays if d is not None)["display_size"]
        lines += ["", f"display size ({size} px): generate -> vectorize (defaults) -> outline drawn in the "
                  "target font's em box, against the real glyph"]
        reference = [None if d is None else d["reference"]["overall"] for d in displays]
        lines += _block(displays, list(DISPLAY_METRICS), DISPLAY_HEADERS,
                        [("real glyph traced (ref)", reference)])
        speck = next(d for d in displays if d is not None)["speck_area"]
        lines.append("(IOU, SSIM higher is better, L1 lower; MORE / FEWER: share of glyphs whose ink falls into more "
                     f"pieces (broken strokes, specks of {speck}+ px) / fewer pieces (merged strokes) than the real "
                     "glyph, lower is better; EDGE: outline length / the real glyph's, 1 is best, > 1 rough or "
                     "broken, < 1 strokes lost; ref: the real glyph at model size through the same path, the best a "
                     "perfect model could score)")
    return "\n".join(lines)
