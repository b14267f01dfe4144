"""`fontgen complete`: the whole path for one font in one command, resumable.

    choose the sources (nearest first) -> render (the target against them) -> train (or
    fine-tune) -> generate what the target lacks -> vectorize --merge-into the target -> evaluate
    on held-out characters

Everything lives in one work folder per target (WORKDIR/complete/<target>). Each step
leaves a result that the next run recognises, so running the same command again after
an interruption goes on where it stopped: a dataset of the same fonts and characters is
kept, training resumes from its checkpoint, glyphs drawn by the current checkpoint are
kept; the font and the evaluation are always written anew (they take seconds to minutes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from fontgen.dataset import manifest_sources
from fontgen.errors import FontgenError
from fontgen.fonts import FontSpec, file_sha256, open_font

STYLE_ID = 0  # the target is the dataset's only style
# One font on a CPU: the cpu preset learns its ~2,300 glyphs in ~5,000 steps at 64 px and no more
# after, so those minutes buy a 128 px model instead (thin strokes 2 px wide, not 1): at ngf/ndf 8
# IPAmincho display IoU 0.616 -> 0.628, merged glyphs 46% -> 37% (docs/benchmarks.md, round 5). A
# G at ngf 12 still fits its 35 passes in ~13 of the 15 minutes beside another job and draws
# closer: display IoU +0.004 to +0.005 on both unseen Mincho fonts (two seeds each), fewer merged
# glyphs (round 12; ngf 16 is cut to ~4,600 steps by the time limit for little more).
SINGLE_FONT_CPU_MODEL = {"image_size": 128, "ngf": 12, "ndf": 8}


@dataclass
class CompleteJob:
    target: FontSpec
    sources: list[FontSpec]  # content font candidates: all that draw what the target lacks, nearest first
    charset: str = "gb2312-1"  # builtin name or file (see fontgen.charsets)
    chars: list[str] | None = None  # overrides charset
    work: Path = Path("fontgen-work/complete")  # this target's work folder
    out: Path | None = None  # default: WORKDIR/fonts/<target>-fontgen.ttf (.otf for a CFF target)
    fonts_dir: Path = Path("fontgen-work/fonts")
    image_size: int | None = None  # rendered size; None: the model's (model_settings)
    preset: str | None = None
    steps: int | None = None
    threads: int | None = None
    init_from: Path | None = None
    family: str | None = None
    min_iou: float = 0.75  # vectorize leaves out glyphs whose outline renders back worse than this
    device: str = "auto"
    train_options: dict = field(default_factory=dict)  # more TrainConfig fields


@dataclass
class CompleteReport:
    font: Path
    sources: list[FontSpec]  # the primary first
    added: int
    left_out: int
    step: int
    display: dict | None
    model: dict
    seconds: float
    skipped_steps: list[str]

    def summary(self) -> str:
        lines = [f"font:      {self.font} ({self.added} glyphs added"
                 + (f", {self.left_out} left out" if self.left_out else "") + ")",
                 f"source:    {self.sources[0]}"
                 + (f" (+ {', '.join(map(str, self.sources[1:]))})" if len(self.sources) > 1 else ""),
                 f"model:     step {self.step}; held-out IoU {self.model['iou']:.3f}, SSIM {self.model['ssim']:.3f} "
                 "at model size"]
        if self.display:
            lines.append(f"display:   held-out at 256 px: IoU {self.display['iou']:.3f}, SSIM "
                         f"{self.display['ssim']:.3f}, {100 * self.display['pieces_more']:.0f}% in more pieces, "
                         f"{100 * self.display['pieces_fewer']:.0f}% in fewer")
        lines.append(f"time:      {self.seconds / 60:.1f} min"
                     + (f" (kept from the last run: {', '.join(self.skipped_steps)})" if self.skipped_steps else ""))
        return "\n".join(lines)


def model_settings(job: CompleteJob) -> tuple[int, dict]:
    """(the size to render at, the train options complete adds): the model size, rendered sharp.

    A checkpoint to go on from (the work folder's own run, else --init-from) brings its own model,
    and rendering follows it: a run begun under another default goes on as it was. The tiny and full
    presets are as `fontgen train` has them."""
    from fontgen.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from fontgen.model import pick_device
    from fontgen.train import PRESETS

    options = dict(job.train_options)
    preset = job.preset or "auto"
    if preset == "auto":
        preset = "full" if pick_device(job.device).type == "cuda" else "cpu"
    resumed = Path(job.work) / "run" / CHECKPOINT_NAME
    start = resumed if resumed.is_file() else job.init_from
    if start is not None:
        size = load_checkpoint(start)["model_config"]["image_size"]
    else:
        if preset == "cpu":
            options = {**SINGLE_FONT_CPU_MODEL, **options}
        size = options.get("image_size") or PRESETS.get(preset, PRESETS["cpu"])["image_size"]
    return job.image_size or size, options


def _dataset_matches(data: Path, job: CompleteJob, sources: list[FontSpec], chars: list[str], image_size: int) -> bool:
    try:
        manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
        style = manifest["styles"][0]
        rendered = [(s["sha256"], s["face"]) for s in manifest_sources(manifest)]
        return (rendered == [(file_sha256(s.path), s.face) for s in sources]
                and style["sha256"] == file_sha256(job.target.path) and style["face"] == job.target.face
                and manifest["charset"].get("requested_chars") == "".join(chars)
                and manifest["image_size"] == image_size)
    except (OSError, KeyError, IndexError, ValueError):
        return False


def complete_font(job: CompleteJob, log=print, progress: bool = True) -> CompleteReport:
    from fontgen import evaluate as evaluate_step
    from fontgen import generate as generate_step
    from fontgen import render as render_step
    from fontgen import train as train_step
    from fontgen import vectorize as vectorize_step
    from fontgen.checkpoint import CHECKPOINT_NAME, load_checkpoint
    from fontgen.fonts import choose_face

    started = time.perf_counter()
    chars, charset_name = render_step.resolve_chars(job.charset if job.chars is None else None,
                                                    "".join(job.chars) if job.chars else None, "gb2312-1")
    job.target = choose_face(job.target, chars, log)
    if not job.sources:
        raise FontgenError("no source font given")
    sources = [render_step.choose_source_face(job.target, s, chars, log) for s in job.sources]
    for font in [job.target, *sources]:
        open_font(font)  # clear errors before anything is written
    sources = render_step.choose_sources(job.target, sources, chars, log=lambda line: log(f"complete: {line}"))
    if len(job.sources) == 1:
        log("complete: one source font; give --source more than once (a serif, a Ming, a sans...) and each "
            "becomes another drawing of every character (docs/benchmarks.md, round 6: IoU +0.02 on two Mincho fonts)")
    image_size, train_options = model_settings(job)
    work, kept = Path(job.work), []
    data, run, glyphs = work / "data", work / "run", work / "glyphs"
    log(f"complete: {job.target} with glyphs drawn from {', '.join(map(str, sources))}; work folder {work}")

    log("complete: 1/5 render")
    if _dataset_matches(data, job, sources, chars, image_size):
        kept.append("render")
        log(f"complete: {data} already holds these fonts and characters")
    else:
        render_step.render_dataset(render_step.RenderJob(
            source=sources[0], more_sources=sources[1:],
            targets=[render_step.StyleFont(STYLE_ID, job.target.path.stem, job.target)],
            chars=chars, charset_name=charset_name, out=data, image_size=image_size), progress=progress, log=log)

    log("complete: 2/5 train")
    options = dict(data=data, runs_dir=work / "runs", run=run, preset=job.preset, steps=job.steps,
                   threads=job.threads, device=job.device, progress=progress, **train_options)
    if (run / CHECKPOINT_NAME).is_file():  # go on from the checkpoint (nothing to do when it is done)
        if "render" not in kept:
            raise FontgenError(f"the fonts or characters changed since {run} was trained; move that run away "
                               f"(or delete {work}) to train anew")
        before = int(load_checkpoint(run / CHECKPOINT_NAME)["step"])
        options.pop("data")
        options["preset"] = job.preset  # None unless given: the run's own comes back (its model: model_settings)
        checkpoint = train_step.train(train_step.TrainConfig(resume=True, **options), log=log)
        if int(load_checkpoint(checkpoint)["step"]) == before:
            kept.append("train")
    else:
        checkpoint = train_step.train(train_step.TrainConfig(init_from=job.init_from, **options), log=log)
    step = int(load_checkpoint(checkpoint)["step"])

    log("complete: 3/5 generate what the font lacks")
    manifest = glyphs / "manifest.json"
    try:
        drawn_at = json.loads(manifest.read_text(encoding="utf-8")).get("step")
    except (OSError, ValueError):
        drawn_at = None
    if drawn_at == step:
        kept.append("generate")
        log(f"complete: {glyphs} was drawn by this checkpoint (step {step})")
    else:
        generate_step.generate_glyphs(generate_step.GenerateJob(
            checkpoint=checkpoint, style=str(STYLE_ID), target_font=job.target, chars=chars, out=glyphs,
            device=job.device), progress=progress, log=log)

    log("complete: 4/5 vectorize into a copy of the font")
    # .otf for a CFF target (it stays CFF), else .ttf
    out = job.out or Path(job.fonts_dir) / f"{job.target.path.stem}-fontgen{vectorize_step.merged_suffix(job.target)}"
    result = vectorize_step.vectorize_folder(glyphs, out=out, merge_into=job.target, progress=progress,
                                             family=job.family, min_iou=job.min_iou, log=log)
    log(result.summary())

    log("complete: 5/5 evaluate on held-out characters")
    metrics = evaluate_step.evaluate_checkpoint(evaluate_step.EvaluateJob(checkpoint=checkpoint, device=job.device),
                                                progress=progress, log=log)
    return CompleteReport(font=result.font_path, sources=sources, added=result.glyphs, left_out=len(result.left_out),
                          step=step,
                          display=(metrics.get("display") or {}).get("overall"), model=metrics["overall"],
                          seconds=time.perf_counter() - started, skipped_steps=kept)


def work_folder(workdir_root: Path, target: FontSpec) -> Path:
    """WORKDIR/complete/<target file name>[-N for face N]."""
    name = target.path.stem + (f"-{target.face}" if target.face else "")
    if not name:
        raise FontgenError(f"cannot name a work folder after {target}")
    return Path(workdir_root) / "complete" / name
