"""`fontgen render`: fonts -> the paired glyph dataset (source = content, targets = styles)."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from fontgen import dataset
from fontgen.charsets import load_charset, unique_chars
from fontgen.errors import FontgenError
from fontgen.files import check_output_folder
from fontgen.fonts import (Coverage, FontSpec, Geometry, GlyphRenderer, choose_face, collection_faces, coverage_of,
                           describe_choice, family_name, file_sha256, open_font, renderer_for)

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "fonts_sample"
CHUNK = 128


@dataclass
class StyleFont:
    id: int
    name: str
    spec: FontSpec


@dataclass
class RenderJob:
    source: FontSpec
    targets: list[StyleFont]
    chars: list[str]
    charset_name: str
    out: Path
    image_size: int = 256
    margin: float = 0.0
    val_fraction: float = 0.1
    seed: int = 0
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 8))
    force: bool = False  # replace an --out folder that fontgen did not write
    # more drawings of each character's content (dataset "sources"); `source` stays the primary:
    # its coverage decides the characters, and a character another source lacks is drawn from it
    more_sources: list[FontSpec] = field(default_factory=list)


@dataclass
class RenderReport:
    out: Path
    chars: int
    pairs: int
    train_pairs: int
    val_pairs: int
    coverage: dict[str, dict]  # font label -> {"requested", "present", "skipped": {reason: n}}
    preview: Path


def sample_manifest(sample_dir: Path = SAMPLE_DIR) -> dict:
    path = sample_dir / "manifest.json"
    if not path.is_file():
        raise FontgenError(f"no default fonts: {path} is missing; pass --source and --target")
    return json.loads(path.read_text(encoding="utf-8"))


def default_job(out: Path, sample_dir: Path = SAMPLE_DIR, **overrides) -> RenderJob:
    """The render job of the bundled fonts_sample/: its source, its styles, its charset."""
    manifest = sample_manifest(sample_dir)
    source = FontSpec(sample_dir / manifest["source"]["path"], int(manifest["source"].get("face", 0)))
    targets = [StyleFont(int(s["id"]), s["name"], FontSpec(sample_dir / s["path"], int(s.get("face", 0))))
               for s in manifest["styles"]]
    charset = str(sample_dir / manifest["charset"])
    return RenderJob(source=source, targets=targets, chars=load_charset(charset), charset_name=charset, out=out,
                     **overrides)


def resolve_chars(charset: str | None, chars: str | None, fallback: str) -> tuple[list[str], str]:
    if chars:
        picked = unique_chars(chars)
        if not picked:
            raise FontgenError("--chars holds no characters")
        return picked, "--chars"
    name = charset or fallback
    return load_charset(name), name


def _coverage_entry(cov: Coverage, requested: int) -> dict:
    skipped: dict[str, int] = {}
    for reason in cov.missing.values():
        skipped[reason] = skipped.get(reason, 0) + 1
    return {"requested": requested, "present": len(cov.present), "skipped": skipped}


# Worker side: one renderer per (font, geometry) per process, pixels written straight into
# the memory-mapped array so no image crosses a process boundary.
_RENDERERS: dict = {}


def _render_rows(font: str, geometry: dict, chars: list[str], array_path: str, rows: list[int]) -> int:
    key = (font, json.dumps(geometry, sort_keys=True))
    renderer = _RENDERERS.get(key)
    if renderer is None:
        renderer = _RENDERERS[key] = GlyphRenderer(FontSpec.parse(font), Geometry.from_dict(geometry))
    array = np.load(array_path, mmap_mode="r+")
    for ch, row in zip(chars, rows):
        array[row] = renderer.render(ch)
    array.flush()
    return len(chars)


def render_dataset(job: RenderJob, progress: bool = True, log=print) -> RenderReport:
    if not 64 <= job.image_size <= 512:
        raise FontgenError(f"--size must be between 64 and 512 pixels, got {job.image_size}")
    if not 0 <= job.val_fraction < 1:
        raise FontgenError(f"--val-fraction must be in [0, 1), got {job.val_fraction}")
    if not job.targets:
        raise FontgenError("no target fonts given")
    ids = [t.id for t in job.targets]
    if len(set(ids)) != len(ids):
        raise FontgenError(f"style ids must be unique, got {ids}")

    job.out = check_output_folder(job.out, "dataset", job.force)
    for target in job.targets:
        target.spec = choose_face(target.spec, job.chars, log)
    if len(job.targets) == 1:  # one font's style: the face of each source collection nearest it
        job.source, *job.more_sources = [choose_source_face(job.targets[0].spec, spec, job.chars, log)
                                         for spec in [job.source, *job.more_sources]]
    else:
        job.source, *job.more_sources = [choose_face(spec, job.chars, log) for spec in [job.source, *job.more_sources]]

    def describe(spec: FontSpec) -> dataset.FontEntry:
        font = open_font(spec)
        geometry = Geometry.for_font(font, job.image_size, job.margin)
        # absolute: generate and evaluate find the fonts again from any folder
        return dataset.FontEntry(str(spec.path.resolve()), spec.face, family_name(font), file_sha256(spec.path),
                                 geometry)

    source_specs = [job.source, *job.more_sources]
    source_entries = [describe(spec) for spec in source_specs]
    seen = {}
    for spec, entry in zip(source_specs, source_entries):
        if (entry.sha256, entry.face) in seen:
            raise FontgenError(f"{spec} is the same font as {seen[entry.sha256, entry.face]}: give each source once")
        seen[entry.sha256, entry.face] = spec
    target_entries = {}
    for target in job.targets:
        entry = target_entries[target.id] = describe(target.spec)
        if any((entry.sha256, entry.face) == (s.sha256, s.face) for s in source_entries):
            raise FontgenError(f"target {target.spec} is the source font itself; pick a different target")

    with _worker_pool(job.workers) as pool:
        return _render_with(pool, job, source_entries, target_entries, progress, log)


def _render_with(pool, job: RenderJob, source_entries: list[dataset.FontEntry], target_entries: dict,
                 progress: bool, log) -> RenderReport:
    report: dict[str, dict] = {}
    source_cov = coverage_of(job.source, job.chars, job.margin)
    report[f"source {job.source}"] = _coverage_entry(source_cov, len(job.chars))
    chars = source_cov.present
    if not chars:
        raise FontgenError(f"the charset ({job.charset_name}, {len(job.chars)} characters) has nothing in "
                           f"common with the source font {job.source}")
    log(f"source {job.source}: {source_cov.summary()} of {len(job.chars)} requested")
    pairs: list[tuple[int, int]] = []  # (char row, style id)
    row_of = {ch: i for i, ch in enumerate(chars)}
    # each target over everything requested: what it lacks, and how much of that the source can draw
    covered = _map(pool, coverage_of, [(t.spec, job.chars, job.margin) for t in job.targets])
    for target, cov in zip(job.targets, covered):
        entry = report[f"style {target.id} {target.name}"] = _coverage_entry(cov, len(job.chars))
        lacks = [ch for ch in job.chars if ch in cov.missing]
        drawable = sum(1 for ch in lacks if ch in row_of)
        entry.update(missing=len(lacks), missing_source_can_draw=drawable)
        log(f"style {target.id:>2} {target.name}: {cov.summary()}; of the {len(lacks)} characters it lacks the "
            f"source can draw {drawable}")
        if lacks and drawable < 0.9 * len(lacks):
            log(f"warning: style {target.id} lacks {len(lacks) - drawable} characters that the source font lacks "
                "too: they can never be generated. Use a source font that covers the charset (e.g. Noto Sans CJK)")
        pairs.extend((row_of[ch], target.id) for ch in cov.present if ch in row_of)
    if not pairs:
        raise FontgenError("no target font has any character of the charset; nothing to pair")

    # each further source draws the characters it has; the primary stands in for the rest
    views = [(job.source, set(chars))]
    more_covered = _map(pool, coverage_of, [(spec, chars, job.margin) for spec in job.more_sources])
    for spec, cov in zip(job.more_sources, more_covered):
        has = set(cov.present)
        report[f"source {spec}"] = {"requested": len(chars), "present": len(has)}
        if len(has) < len(chars):
            log(f"source {spec}: lacks {len(chars) - len(has)} of the primary source's {len(chars)} characters; "
                "the primary's glyphs stand in there")
        views.append((spec, has))

    size = job.image_size
    writer = dataset.DatasetWriter(job.out, size, len(chars), len(pairs), views=len(views))
    try:
        pair_char = writer["pair_char"]
        pair_style = writer["pair_style"]
        pair_split = writer["pair_split"]
        writer["codepoints"][:] = [ord(ch) for ch in chars]
        for i, (row, style_id) in enumerate(pairs):
            pair_char[i], pair_style[i] = row, style_id
            pair_split[i] = dataset.split_is_val(ord(chars[row]), style_id, job.val_fraction, job.seed)

        tasks = []  # (font, geometry, chars, array file, rows)
        source_path = str(writer.tmp / "source.npy")
        for view, (spec, has) in enumerate(views):
            own = [i for i, ch in enumerate(chars) if ch in has]
            stand_in = [i for i, ch in enumerate(chars) if ch not in has]
            for font, entry, rows in ((spec, source_entries[view], own), (job.source, source_entries[0], stand_in)):
                for start in range(0, len(rows), CHUNK):
                    part = rows[start:start + CHUNK]
                    tasks.append((str(font), entry.geometry.to_dict(), [chars[i] for i in part], source_path,
                                  [view * len(chars) + i for i in part]))
        images_path = str(writer.tmp / "images.npy")
        for target in job.targets:
            rows = [i for i, (_, sid) in enumerate(pairs) if sid == target.id]
            geometry = target_entries[target.id].geometry.to_dict()
            for start in range(0, len(rows), CHUNK):
                part = rows[start:start + CHUNK]
                tasks.append((str(target.spec), geometry, [chars[pairs[i][0]] for i in part], images_path, part))
        _run_tasks(pool, tasks, total=len(views) * len(chars) + len(pairs), progress=progress)

        styles = [dataset.Style(t.id, t.name, target_entries[t.id]) for t in job.targets]
        val_pairs = int(np.count_nonzero(np.asarray(pair_split)))
        preview_path = writer.tmp / "preview.png"
        write_preview(preview_path, chars, pairs, writer["source"], writer["images"], styles)
        manifest = {
            "format": dataset.FORMAT,
            "version": dataset.VERSION,
            "image_size": size,
            "margin": job.margin,
            "source": source_entries[0].to_dict(),
            **({"sources": [e.to_dict() for e in source_entries]} if len(source_entries) > 1 else {}),
            "styles": [s.to_dict() for s in styles],
            # the requested characters themselves: generate needs them, whatever --charset/--chars said
            "charset": {"name": job.charset_name, "requested": len(job.chars), "chars": len(chars),
                        "requested_chars": "".join(job.chars)},
            "split": {"val_fraction": job.val_fraction, "seed": job.seed, "by": "character, per style",
                      "train_pairs": len(pairs) - val_pairs, "val_pairs": val_pairs},
            "coverage": report,
        }
        writer.commit(manifest)
    except BaseException:
        writer.abort()
        raise
    return RenderReport(job.out, len(chars), len(pairs), len(pairs) - val_pairs, val_pairs, report,
                        job.out / "preview.png")


@contextmanager
def _worker_pool(workers: int):
    """Processes for coverage and rasterising, or None to work in this process."""
    if workers <= 1:
        yield None
        return
    # spawn: the parent may hold torch/OpenMP threads that a fork would copy in a bad state.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _map(pool, fn, calls: list[tuple]) -> list:
    if pool is None:
        return [fn(*args) for args in calls]
    return [future.result() for future in [pool.submit(fn, *args) for args in calls]]


def _run_tasks(pool, tasks: list, total: int, progress: bool) -> None:
    with tqdm(total=total, unit="glyph", desc="render", disable=not progress, dynamic_ncols=True) as bar:
        if pool is None:
            for task in tasks:
                bar.update(_render_rows(*task))
            return
        futures = [pool.submit(_render_rows, *task) for task in tasks]
        for future in as_completed(futures):
            bar.update(future.result())


def write_preview(path: Path, chars: list[str], pairs: list[tuple[int, int]], source: np.ndarray,
                  images: np.ndarray, styles: list[dataset.Style], rows: int = 12, cell: int | None = None) -> None:
    """A grid: one row per character, columns source | each style (blank where the style lacks it);
    bigger cells when there are few styles, so a one-font dataset is still worth looking at."""
    cell = cell or (96 if len(styles) <= 4 else 64)
    index = {(row, sid): i for i, (row, sid) in enumerate(pairs)}
    picks = np.linspace(0, len(chars) - 1, num=min(rows, len(chars))).round().astype(int)
    header, pad = 18, 2
    width = (len(styles) + 1) * (cell + pad) + pad
    sheet = Image.new("L", (width, header + len(picks) * (cell + pad) + pad), 255)
    draw = ImageDraw.Draw(sheet)
    label_font = ImageFont.load_default()
    for col, label in enumerate(["src"] + [str(s.id) for s in styles]):
        draw.text((pad + col * (cell + pad) + 2, 3), label, fill=0, font=label_font)
    for r, row in enumerate(picks):
        y = header + pad + r * (cell + pad)
        cells = [source[row]] + [images[index[(row, s.id)]] if (row, s.id) in index else None for s in styles]
        for col, pixels in enumerate(cells):
            x = pad + col * (cell + pad)
            if pixels is None:
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=200)
                draw.line([x, y, x + cell - 1, y + cell - 1], fill=200)
                continue
            sheet.paste(Image.fromarray(np.asarray(pixels)).resize((cell, cell), Image.Resampling.BOX), (x, y))
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=220)
    sheet.save(path)


# ---------------------------------------------------------------------------------------
# Choosing the source: the content font nearest the target's style


SOURCE_SAMPLE = 200  # of the target's own characters: a stable mean, and a few seconds a candidate
SOURCE_SIZE = 64  # pixels; stroke weight and serifs show at this size, placement noise does not
COVERAGE_KEPT = 0.99  # a nearer source may draw up to 1% fewer of the lacked characters than the widest
MAX_SOURCES = 4  # drawings averaged per glyph; each costs a pass of the generator


@dataclass
class SourceCandidate:
    font: FontSpec
    draws: int  # characters the target lacks that this source covers, so can be drawn
    distance: float  # mean L1 (0..1) between its glyphs and the target's own, each in its em box


def rank_sources(target: FontSpec, candidates: list[FontSpec], chars: list[str],
                 sample: int = SOURCE_SAMPLE) -> list[SourceCandidate]:
    """The candidates, best first: among those that can draw (nearly) as much of what the target
    lacks as any, the one whose glyphs already look most like the target's own; then the rest.

    The generator learns the difference between the source's drawing and the target's; a Mincho
    target drawn from a serif source has far less to learn than from a sans one (the measured
    case: docs/benchmarks.md, round 5)."""
    target_cov = coverage_of(target, chars)
    if not target_cov.present:
        raise FontgenError(f"{target} has none of the {len(chars)} requested characters: nothing to learn from")
    covers = {str(c): set(coverage_of(c, chars).present) for c in candidates}
    lacked = target_cov.missing.keys()
    shared = [ch for ch in target_cov.present if all(ch in cov for cov in covers.values())]
    if not shared:
        raise FontgenError(f"the source candidates share none of {target}'s own characters")
    compared = [shared[i] for i in np.random.default_rng(0).permutation(len(shared))[:sample]]
    # the same Geometry rules as render: each font in its own em box
    own_renderer = renderer_for(target, SOURCE_SIZE)
    truth = np.stack([own_renderer.render(ch) for ch in compared]).astype(np.float32)
    ranked = []
    for candidate in candidates:
        renderer = renderer_for(candidate, SOURCE_SIZE)
        drawn = np.stack([renderer.render(ch) for ch in compared]).astype(np.float32)
        ranked.append(SourceCandidate(candidate, sum(ch in covers[str(candidate)] for ch in lacked),
                                      float(np.abs(drawn - truth).mean() / 255)))
    most = max(c.draws for c in ranked)
    return sorted(ranked, key=lambda c: (c.draws < COVERAGE_KEPT * most, c.distance))


FACE_SAMPLE = 600  # of the target's own characters (Noto CJK's faces draw ~3/4 of them differently)
FACE_EVIDENCE = 20  # characters drawn differently by some face, below which the charset's region decides


def choose_source_face(target: FontSpec, spec: FontSpec, chars: list[str], log=print) -> FontSpec:
    """For a source collection named without #N: the face whose glyphs are nearest the target's own
    where the faces differ, said aloud; otherwise `spec` as given.

    The regional faces of a CJK collection draw many characters in different forms (真, 戸, 骨).
    A Japanese Mincho completed with GB2312 characters keeps its own Japanese forms, so it learns
    from and is drawn from Noto Serif CJK's JP face, not the SC face the charset alone would pick
    (IPAmincho's held-out display IoU 0.677 -> 0.692, docs/benchmarks.md round 9). A character every
    face draws alike says nothing, so only those some face draws differently are compared; if too few
    are, or the target has none of the characters, the charset's region decides (choose_face)."""
    faces = collection_faces(spec)
    if not faces:
        return spec
    own = coverage_of(target, chars).present
    if not own:
        return choose_face(spec, chars, log)
    specs = [FontSpec(spec.path, index) for index, _, _ in faces]
    sample = [own[i] for i in np.random.default_rng(0).permutation(len(own))[:FACE_SAMPLE]]
    for face in specs:
        sample = coverage_of(face, sample).present
    if not sample:
        return choose_face(spec, chars, log)
    renderers = [renderer_for(face, SOURCE_SIZE) for face in specs]
    drawn = np.stack([[renderer.render(ch) for ch in sample] for renderer in renderers]).astype(np.float32)
    differs = (drawn != drawn[:1]).any(axis=(0, 2, 3))
    if differs.sum() < FACE_EVIDENCE:  # AR PL UMing's faces differ on one character of 600
        return choose_face(spec, chars, log)
    own_renderer = renderer_for(target, SOURCE_SIZE)
    truth = np.stack([own_renderer.render(ch) for ch, d in zip(sample, differs) if d])
    distance = np.abs(drawn[:, differs] - truth.astype(np.float32)).mean(axis=(1, 2, 3)) / 255
    order = np.argsort(distance, kind="stable")  # a tie goes to the earlier face (Noto's JP before its Mono JP)
    best = specs[order[0]]
    log(describe_choice(spec, faces, best.face, f", nearest the target's own glyphs on the {int(differs.sum())} of "
                        f"{len(sample)} characters the faces draw differently (distance {distance[order[0]]:.3f}; "
                        + ", ".join(f"#{specs[i].face} {distance[i]:.3f}" for i in order[1:]) + ")"))
    return best


def choose_sources(target: FontSpec, candidates: list[FontSpec], chars: list[str], log=print) -> list[FontSpec]:
    """The sources to render, nearest the target's style first (the primary, `rank_sources`' best),
    then every other candidate that can draw (nearly) as much of what the target lacks, up to
    MAX_SOURCES: the model learns from all and generate averages their drawings (round 6 of
    docs/benchmarks.md). The ranking is said aloud; one candidate is taken as given."""
    if len(candidates) == 1:
        return list(candidates)
    ranked = rank_sources(target, candidates, chars)
    most = max(c.draws for c in ranked)
    kept = [c for c in ranked if c.draws >= COVERAGE_KEPT * most][:MAX_SOURCES]
    for c in ranked:
        mark = "*" if c is ranked[0] else "+" if c in kept else " "
        log(f"source {mark} {c.font}: draws {c.draws} of the characters the target lacks, "
            f"distance {c.distance:.3f} from its own glyphs" + ("" if c in kept else "; not used"))
    if ranked[0].draws < most:
        log(f"source: {ranked[0].font} is nearest in style but draws {most - ranked[0].draws} fewer characters "
            "than another candidate")
    return [c.font for c in kept]
