"""`fontgen generate`: draw the glyphs a style's font lacks, as a generated-glyph folder.

Output (DESIGN.md "Generated-glyph folder"): one 8-bit grey `uXXXX.png` per glyph and
`manifest.json` with the style, the geometry transform (the target font's em box at the
model's resolution) and the target font; plus `contact-sheet.png` (source | generated).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from fontgen.align import aligned_mean
from fontgen.checkpoint import load_generator
from fontgen.dataset import load_dataset
from fontgen.errors import FontgenError
from fontgen.files import check_output_folder, clean_stale_temps, temp_path
from fontgen.fonts import (FontSpec, Geometry, GlyphRenderer, choose_face, coverage_of, file_sha256, open_font,
                           render_views)
from fontgen.images import calibrate_ink, from_model, glyph_sheet, ink_components, paged_sheets, to_model
from fontgen.model import pick_device

GLYPHS_FORMAT = "fontgen-glyphs"
GLYPHS_VERSION = 1
# Drawn from several source fonts, the nearest one's drawing counts twice: where the drawings
# disagree about a thin stroke, an even vote leaves it grey and broken (two Mincho fonts, four
# sources: 10.5-15.4% of glyphs in more pieces with an even mean, 8.1-10.1% so, display IoU
# +0.004; docs/benchmarks.md, round 6).
PRIMARY_WEIGHT = 2


def glyph_filename(codepoint: int) -> str:
    return f"u{codepoint:04X}.png"


def parse_style(text: str, styles: list[dict]) -> dict[int, float]:
    """'12', 'kai-ukai' or a blend '3:0.5,12:0.5' -> {style id: weight}, weights summing to 1."""
    by_id = {int(s["id"]): s for s in styles}
    by_name = {s["name"]: int(s["id"]) for s in styles}

    def one(token: str) -> int:
        token = token.strip()
        if token.lstrip("-").isdigit() and int(token) in by_id:
            return int(token)
        if token in by_name:
            return by_name[token]
        listing = ", ".join(f"{s['id']} {s['name']}" for s in styles)
        raise FontgenError(f"unknown style {token!r}; the checkpoint's styles are: {listing}")

    weights: dict[int, float] = {}
    for part in text.split(","):
        name, sep, weight = part.rpartition(":") if ":" in part else (part, "", "1")
        try:
            value = float(weight)
        except ValueError:
            raise FontgenError(f"bad style weight in {part!r}; write blends as 3:0.5,12:0.5") from None
        if value < 0:
            raise FontgenError(f"style weights must be >= 0, got {part!r}")
        style_id = one(name)
        weights[style_id] = weights.get(style_id, 0.0) + value
    total = sum(weights.values())
    if total <= 0:
        raise FontgenError(f"style weights in {text!r} sum to 0")
    return {k: v / total for k, v in weights.items()}


@dataclass
class GenerateJob:
    checkpoint: Path
    style: str
    out: Path | None = None  # default: generated_root/style-ID
    generated_root: Path = Path("fontgen-work/generated")
    target_font: FontSpec | None = None
    chars: list[str] | None = None
    batch_size: int = 64
    device: str = "auto"
    seed: int | None = None  # with a seed, dropout stays on: a different sample per seed
    interpolate: tuple[str, str] | None = None
    steps: int = 5
    force: bool = False  # replace an --out folder that fontgen did not write
    repair: bool = True  # join broken strokes through faint ink (fontgen.repair), guided by the source
    ensemble: bool = True  # the mean of five drawings at 1 px apart (Generation.run), not with a seed
    align: bool = True  # several source fonts: their drawings moved onto each other before the mean (fontgen.align)
    exemplars: bool = True  # blend each drawing with its redrawing from the font's own glyphs (fontgen.exemplars)


@dataclass
class GenerateReport:
    out: Path
    style_id: int
    glyphs: int
    flagged: dict[str, list[str]] = field(default_factory=dict)
    contact_sheet: Path | None = None
    seconds: float = 0.0


SAMPLE_SHIFT = 2  # px at model size: how far `Generation.run(sample=True)` moves a dropout-free model's input


# Where `Generation.run` draws each glyph by default, (dy, dx) in px at 64 px (scaled with the size): the
# place itself and 1 px up, down, left, right. The generator breaks a thin stroke at some placements and
# not at others; the mean of the five drawings, each moved back, breaks fewer (docs/benchmarks.md).
ENSEMBLE_OFFSETS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))


def sample_offsets(count: int) -> torch.Tensor:
    """[count, 2] (dy, dx) from torch's RNG, each in [-SAMPLE_SHIFT, SAMPLE_SHIFT], never (0, 0)."""
    span = 2 * SAMPLE_SHIFT + 1
    # one of the span^2 - 1 non-zero offsets, uniformly
    index = torch.randint(0, span * span - 1, (count,))
    index = index + (index >= span * span // 2).long()  # skip the centre, (0, 0)
    return torch.stack([index // span, index % span], dim=1) - SAMPLE_SHIFT


def shift_glyphs(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Move each glyph [N, 1, H, W] (model range, paper = 1) by its (dy, dx); paper comes in at the edges."""
    out = torch.ones_like(x)
    h, w = x.shape[-2:]
    for i, (dy, dx) in enumerate(offsets.tolist()):
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[i, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


class Generation:
    """A loaded checkpoint ready to turn source glyphs into a style's glyphs."""

    def __init__(self, checkpoint: Path, device: str = "auto"):
        self.device = pick_device(device)
        self.generator, self.config, self.meta = load_generator(checkpoint, self.device)
        if not self.meta.get("source") or not self.meta.get("styles"):
            raise FontgenError(f"{checkpoint} has no source font or style table; it was not written by fontgen train")
        # every source font the model learnt from (a view of each character); the first is the primary
        self.sources = [(FontSpec(Path(s["path"]), int(s.get("face", 0))), Geometry.from_dict(s["geometry"]))
                        for s in self.meta["sources"]]
        self.source_spec, self.source_geometry = self.sources[0]
        self.image_size = self.config.image_size
        self._renderers: list[GlyphRenderer] | None = None

    @property
    def source_renderers(self) -> list[GlyphRenderer]:
        if self._renderers is None:
            for spec, _ in self.sources:
                if not spec.path.is_file():
                    raise FontgenError(f"the source font the model was trained with is not at {spec.path} any "
                                       "more; put it back there (generate draws from its glyphs)")
                open_font(spec)
            self._renderers = [GlyphRenderer(spec, geometry) for spec, geometry in self.sources]
        return self._renderers

    @property
    def source_renderer(self) -> GlyphRenderer:
        return self.source_renderers[0]

    def font_changes(self, spec: FontSpec, entry: dict) -> str | None:
        """A warning if the font at `spec` is not the file the style table recorded (sha256), else None."""
        recorded = entry.get("sha256")
        if recorded and spec.path.is_file() and Path(entry["path"]).resolve() == spec.path.resolve() \
                and file_sha256(spec.path) != recorded:
            return (f"warning: {spec} has changed since the dataset was rendered (sha256 differs); "
                    "the glyphs follow the font as it is now")
        return None

    def style_entry(self, style_id: int) -> dict:
        return next(s for s in self.meta["styles"] if int(s["id"]) == style_id)

    def output_geometry(self, style_id: int) -> Geometry:
        """The target font's em box at the model's output size."""
        geometry = Geometry.from_dict(self.style_entry(style_id)["geometry"])
        return geometry.resized(self.image_size)

    def style_vectors(self, weights: dict[int, float], count: int) -> torch.Tensor:
        blend = torch.zeros(count, self.config.embedding_num, device=self.device)
        for style_id, weight in weights.items():
            blend[:, style_id] = weight
        return self.generator.style_from_weights(blend)

    def render_sources(self, chars: list[str]) -> np.ndarray:
        """uint8 [N, S, S]: the primary source's glyphs."""
        return np.stack([self.source_renderer.render(ch) for ch in chars])

    def render_views(self, chars: list[str]) -> np.ndarray:
        """uint8 [V, N, S, S]: each character in every source font, as render stored them (the
        primary's glyph where another source lacks the character)."""
        return render_views(self.source_renderers, chars)

    def source_pieces(self, chars: list[str]) -> np.ndarray:
        """Pieces of ink of each character's source glyph, counted at display size (256 px, specks
        ignored, as evaluate counts them): strokes that touch at model size are still apart there."""
        from fontgen.metrics import DISPLAY_SIZE, piece_counts

        self.source_renderer  # noqa: B018 - checks that the source font is still there
        renderer = GlyphRenderer(self.source_spec, self.source_geometry.resized(DISPLAY_SIZE))
        return piece_counts(np.stack([renderer.render(ch) for ch in chars]))

    def exemplars(self, style_id: int, target: FontSpec | None = None, exclude=(), progress: bool = False):
        """The style's font's own glyphs at the model's size, to redraw from (fontgen.exemplars);
        target: the font to complete, if not the style's font from training."""
        from fontgen.exemplars import font_exemplars

        style = self.style_entry(style_id)
        target = target or FontSpec(Path(style["path"]), int(style.get("face", 0)))
        self.source_renderers  # noqa: B018 - checks that the source fonts are still there
        return font_exemplars(target, self.output_geometry(style_id), self.sources, exclude, progress)

    def redraw(self, generated: np.ndarray, chars: list[str], sources: np.ndarray, exemplars,
               progress: bool = False) -> np.ndarray:
        """Each drawing blended with its redrawing from the font's own glyphs (fontgen.exemplars);
        sources: `chars` in every source font, as render_views draws them."""
        from fontgen.exemplars import redraw

        return redraw(generated, sources, [ord(ch) for ch in chars], exemplars, progress=progress)

    def repair(self, generated: np.ndarray, chars: list[str]) -> tuple[np.ndarray, int]:
        """Join strokes the generator broke (fontgen.repair), never below the source glyph's piece
        count; returns (images, glyphs changed)."""
        from fontgen.repair import join_all

        return join_all(generated, self.source_pieces(chars))

    def finish(self, generated: np.ndarray, chars: list[str], repair: bool = True) -> tuple[np.ndarray, int]:
        """The glyphs as generate writes them (and evaluate scores them): repaired unless `repair` is
        off, then their ink calibrated (images.calibrate_ink); returns (images, glyphs repaired)."""
        joined = 0
        if repair:
            generated, joined = self.repair(generated, chars)
        return calibrate_ink(generated), joined

    @torch.no_grad()
    def run(self, sources: np.ndarray, weights: dict[int, float], batch_size: int = 64,
            progress: bool = False, sample: bool = False, ensemble: bool = True, align: bool = True) -> np.ndarray:
        """uint8 source glyphs [N, S, S] -> uint8 generated glyphs [N, s, s] at model size.

        sources may also be [V, N, S, S], the views of `render_views`: the drawing is then the
        mean of the drawings from each source font, the primary's counted PRIMARY_WEIGHT times,
        with align each first moved onto the others (fontgen.align: one stroke where they
        disagree about its place, not two grey ones).
        ensemble: the mean of the drawings at the ENSEMBLE_OFFSETS placements (five passes of G),
        else one pass. Not with sample, which is one drawing.
        sample: another drawing for each torch seed. A model trained with dropout keeps it on
        (only the dropout layers: batch norm keeps its running statistics); a model trained
        without draws the source moved by up to SAMPLE_SHIFT px and moves the drawing back, since
        a convolutional net draws each placement a little differently (no noise it never saw).
        """
        dropouts = [m for m in self.generator.modules() if isinstance(m, torch.nn.Dropout) and m.p > 0]
        for m in dropouts:
            m.train(sample)
        shift = sample and not dropouts
        views = sources if sources.ndim == 4 else sources[None]
        count = views.shape[1]
        out = np.empty((count, self.image_size, self.image_size), dtype=np.uint8)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else nullcontext()
        with tqdm(total=count, unit="glyph", desc="generate", disable=not progress, dynamic_ncols=True) as bar:
            for start in range(0, count, batch_size):
                n = min(batch_size, count - start)
                style = self.style_vectors(weights, n)
                drawings = []
                for view in views:
                    x = to_model(view[start:start + n], self.image_size, self.device)
                    if shift:
                        offsets = sample_offsets(n)
                        x = shift_glyphs(x, offsets)
                    if ensemble and not sample:
                        fake = self._ensemble(x, style, autocast)
                    else:
                        with autocast:
                            fake = self.generator(x, style=style).float()
                    if shift:
                        fake = shift_glyphs(fake, -offsets)
                    drawings.append(fake.float()[:, 0])
                out[start:start + n] = from_model(self._combine(drawings, align)[:, None])
                bar.update(n)
        self.generator.eval()
        return out

    @staticmethod
    def _combine(drawings: list[torch.Tensor], align: bool) -> torch.Tensor:
        """One drawing [N, s, s] (model range) from each source font's: the primary counted
        PRIMARY_WEIGHT times, with align each moved onto the others first."""
        if len(drawings) == 1:
            return drawings[0]
        weights = [PRIMARY_WEIGHT] + [1] * (len(drawings) - 1)
        ink = (1 - torch.stack(drawings)) / 2  # aligned_mean's range: 0 paper, 1 ink
        if align:
            ink = aligned_mean(ink, weights)
        else:
            ink = (ink * torch.tensor(weights, dtype=ink.dtype, device=ink.device).view(-1, 1, 1, 1)).sum(0) / sum(weights)
        return 1 - 2 * ink

    def _ensemble(self, x: torch.Tensor, style: torch.Tensor, autocast) -> torch.Tensor:
        step = max(1, self.image_size // 64)
        total = torch.zeros_like(x)
        for dy, dx in ENSEMBLE_OFFSETS:
            offsets = torch.tensor([[dy * step, dx * step]]).expand(len(x), 2)
            with autocast:
                fake = self.generator(shift_glyphs(x, offsets), style=style)
            total += shift_glyphs(fake.float(), -offsets)
        return total / len(ENSEMBLE_OFFSETS)


def default_chars(generation: Generation) -> tuple[list[str], str]:
    """The characters the training dataset was rendered for (stored in the checkpoint)."""
    if generation.meta.get("charset"):
        return list(generation.meta["charset"]), "the training charset"
    dataset_dir = generation.meta.get("dataset")  # checkpoints from before the charset was stored
    if not dataset_dir or not (Path(dataset_dir) / "manifest.json").is_file():
        raise FontgenError("the training dataset (for its charset) is not where the checkpoint says "
                           f"({dataset_dir}); pass --chars or --charset")
    return load_dataset(Path(dataset_dir)).requested_chars(), "the training charset"


def source_has(generation: Generation, chars: list[str]) -> list[str]:
    """The characters the source font really has (render's coverage rules), in order."""
    return coverage_of(generation.source_spec, chars).present


def structure_flags(generated: np.ndarray, sources: np.ndarray) -> list[list[str]]:
    """Flag the 'wrong character' failures: nearly no ink, or ink shattered into many pieces."""
    flags = []
    scale = (generated.shape[-1] / sources.shape[-1]) ** 2
    for gen, src in zip(generated, sources):
        found = []
        ink, src_ink = int((gen < 128).sum()), int((src < 128).sum()) * scale
        if ink < max(0.15 * src_ink, 0.002 * gen.size):
            found.append("nearly-empty")
        elif ink_components(gen) > 2 * ink_components(src) + 4:
            found.append("fragmented")
        flags.append(found)
    return flags


def generate_glyphs(job: GenerateJob, progress: bool = True, log=print) -> GenerateReport:
    started = time.perf_counter()
    generation = Generation(job.checkpoint, job.device)
    weights = parse_style(job.style, generation.meta["styles"])
    style_id = max(weights, key=weights.get)
    style = generation.style_entry(style_id)
    target = job.target_font or FontSpec(Path(style["path"]), int(style.get("face", 0)))
    if job.seed is not None:
        torch.manual_seed(job.seed)
    out = Path(job.out) if job.out is not None else Path(job.generated_root) / f"style-{style_id}"
    out = check_output_folder(out, "glyphs", job.force)  # before any work: never a user's folder
    for spec, entry in [*zip((spec for spec, _ in generation.sources), generation.meta["sources"]), (target, style)]:
        warning = generation.font_changes(spec, entry)
        if warning:
            log(warning)
    if job.target_font is None and not target.path.is_file():
        raise FontgenError(f"style {style_id}'s font is not at {target.path} any more; pass --target-font FONT "
                           "(the font to complete)")
    requested, charset_label = job.chars, "requested"
    if requested is None:
        requested, charset_label = default_chars(generation)
    if job.target_font is not None:
        target = choose_face(target, requested, log)
    have_source = source_has(generation, requested)
    if not have_source:
        raise FontgenError(f"nothing to generate: the source font {generation.source_spec} has none of the "
                           f"{len(requested)} requested characters (it gives each glyph's content); ask for "
                           "characters it has")
    if len(have_source) < len(requested):
        log(f"skipped {len(requested) - len(have_source)} of the {len(requested)} requested characters: the "
            f"source font {generation.source_spec} lacks them")
    if job.chars is None or job.target_font is not None:  # completing a font: only what it lacks
        present = set(coverage_of(target, have_source).present)
        chars = [ch for ch in have_source if ch not in present]
        log(f"style {style_id} {style['name']}: {len(chars)} of the {len(have_source)} characters "
            f"of {charset_label} that the source has are missing from {target}")
        if not chars:
            raise FontgenError(f"nothing to generate: the target font {target} already has all {len(have_source)} "
                               "requested characters that the source font has; use --chars without --target-font "
                               "to redraw glyphs anyway")
    else:  # exactly these, as far as the source font can give their content
        chars = have_source
    clean_stale_temps(out.parent)
    tmp = temp_path(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        views = generation.render_views(chars)
        sources = views[0]  # what the contact sheet shows and the structure checks compare with
        generated = generation.run(views, weights, job.batch_size, progress, sample=job.seed is not None,
                                   ensemble=job.ensemble, align=job.align)
        lent = 0
        if job.exemplars and len(weights) == 1:  # a blend of styles has no one font to lend glyphs
            bank = generation.exemplars(style_id, target, progress=progress)
            lent = len(bank)
            generated = generation.redraw(generated, chars, views, bank, progress)
            log(f"redrawn from {lent} of {target}'s own glyphs")
        generated, joined = generation.finish(generated, chars, job.repair)
        flags = structure_flags(generated, sources)
        entries = []
        for ch, pixels, found in zip(chars, generated, flags):
            name = glyph_filename(ord(ch))
            Image.fromarray(pixels).save(tmp / name)
            entries.append({"char": ch, "codepoint": ord(ch), "file": name, "flags": found})
        manifest = {
            "format": GLYPHS_FORMAT,
            "version": GLYPHS_VERSION,
            "style": {"id": style_id, "name": style["name"], "family": style.get("family", style["name"]),
                      "weights": {str(k): v for k, v in weights.items()}},
            "geometry": generation.output_geometry(style_id).to_dict(),
            "target_font": str(target),
            "checkpoint": str(job.checkpoint),
            "step": generation.meta.get("step"),
            "sampled": job.seed is not None,
            "repaired": job.repair,
            "ensemble": job.ensemble and job.seed is None,
            "sources": len(views),
            "aligned": job.align and len(views) > 1,
            "exemplars": lent,  # the font's own glyphs the drawings were blended with (0: none)
            "glyphs_repaired": int(joined),
            "seed": job.seed,
            "flagged": {kind: [e["char"] for e in entries if kind in e["flags"]] for kind in ("nearly-empty", "fragmented")},
            "glyphs": entries,
        }
        write_contact_sheet(tmp / "contact-sheet.png", chars, sources, generated, flags)
        if job.interpolate:
            write_interpolation(tmp / "interpolate", generation, job.interpolate, job.steps, chars, views,
                                job.repair)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return GenerateReport(out, style_id, len(chars), manifest["flagged"], out / "contact-sheet.png",
                          time.perf_counter() - started)


def write_interpolation(folder: Path, generation: Generation, pair: tuple[str, str], steps: int,
                        chars: list[str], sources: np.ndarray, repair: bool = False) -> None:
    """One strip per character: style A -> style B in `steps` blends (each repaired and calibrated as
    the glyphs are); `sources` as Generation.run takes them."""
    a = next(iter(parse_style(pair[0], generation.meta["styles"])))
    b = next(iter(parse_style(pair[1], generation.meta["styles"])))
    folder.mkdir()
    frames = []
    for t in np.linspace(0.0, 1.0, max(2, steps)):
        weights = {a: 1.0 - t, b: t} if a != b else {a: 1.0}
        frame = generation.run(sources, weights)
        frames.append(generation.finish(frame, chars, repair)[0])
    size = generation.image_size
    for i, ch in enumerate(chars):
        strip = Image.new("L", (size * len(frames), size), 255)
        for j, frame in enumerate(frames):
            strip.paste(Image.fromarray(frame[i]), (j * size, 0))
        strip.save(folder / glyph_filename(ord(ch)))


def write_contact_sheet(path: Path, chars: list[str], sources: np.ndarray, generated: np.ndarray,
                        flags: list[list[str]]) -> list[Path]:
    """Pairs of cells, source | generated, labelled with the codepoint; flagged glyphs framed and
    first. Every glyph is shown, a page of 240 per image (contact-sheet.png, contact-sheet-2.png, ...)."""
    order = sorted(range(len(chars)), key=lambda i: not flags[i])  # flagged first, else in order

    def page(start: int, stop: int, title: str):
        picked = order[start:stop]
        captions = [f"U+{ord(chars[i]):04X}" + (" !" if flags[i] else "") for i in picked]
        return glyph_sheet([[sources[i], generated[i]] for i in picked], captions,
                           emphasised=[bool(flags[i]) for i in picked], title=f"source | generated: {title}"
                           + (", flagged first" if any(flags) else ""))

    return paged_sheets(path, len(chars), page)
