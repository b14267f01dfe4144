"""The `fontgen` command line: thin click wrappers over the pipeline modules."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from fontgen.errors import FontgenError


class Workdir:
    """The default folders of DESIGN.md, all under one work directory."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.runs = root / "runs"
        self.latest_run = self.runs / "latest"
        self.generated = root / "generated"
        self.fonts = root / "fonts"


class FontgenGroup(click.Group):
    """Turns FontgenError into one line on stderr and exit status 1 (tracebacks only with --debug)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FontgenError as exc:
            if ctx.meta.get("debug"):
                raise
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("interrupted") from None
        except OSError as exc:  # full disk, read-only or vanished folder: the user's to fix, not a bug
            if ctx.meta.get("debug"):
                raise
            where = f" {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"cannot use{where}: {exc.strerror or exc}") from None


@click.group(cls=FontgenGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("fontgen-work"),
              show_default=True, help="Where data, runs, generated glyphs and fonts go by default.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="fontgen")
@click.pass_context
def cli(ctx: click.Context, workdir: Path, debug: bool) -> None:
    """Complete a CJK font: learn its style from the glyphs it has, draw the missing ones.

    \b
    Pipeline (each step runs with no options on the bundled fonts_sample/):
      fontgen render      fonts -> paired glyph images (WORKDIR/data)
      fontgen train       images -> Zi2Zi GAN checkpoint (WORKDIR/runs/latest)
      fontgen generate    --style ID: draw the glyphs that style's font lacks
      fontgen review      accept, reject or redraw each generated glyph (a local page)
      fontgen vectorize   glyph images -> outlines -> TTF (WORKDIR/fonts)
      fontgen evaluate    quality on held-out characters
      fontgen complete    all of the above for one font, in one resumable command
    """
    ctx.obj = Workdir(workdir)
    ctx.meta["debug"] = debug
    if not debug:
        # fontTools warns about font-file quirks it works around (a Unix 'created' date, glyf padding)
        # every time a font is opened, and a run opens each font hundreds of times
        logging.getLogger("fontTools").setLevel(logging.ERROR)


def main() -> None:
    try:
        cli.main(prog_name="fontgen")
    except Exception as exc:  # noqa: BLE001 - a bug, not a user error: say so in one line
        if "--debug" in sys.argv[1:]:
            raise
        click.echo(f"fontgen: unexpected error: {type(exc).__name__}: {exc} (run with --debug for a traceback)",
                   err=True)
        sys.exit(1)


# Each subcommand below parses options, resolves the workdir defaults, and calls one
# importable function of its pipeline module. Heavy imports (torch) stay inside them so
# `fontgen --help` is instant.

# === render ===
@cli.command()
@click.option("--source", "sources", metavar="FONT", multiple=True,
              help="Content font (path, or path#N for face N of a collection; without #N, with one --target the "
                   "face nearest its glyphs, else the face of the charset's region). Give more than one and each is "
                   "another drawing of every character: the model learns from all, generate averages them; the "
                   "first decides the characters. Default: the source of fonts_sample/.")
@click.option("--target", "targets", metavar="FONT", multiple=True,
              help="Style font, repeatable; style ids are 0, 1, ... in the order given. Default: fonts_sample/ styles.")
@click.option("--charset", metavar="NAME|FILE",
              help="Builtin (gb2312-1, gb2312-2, gb2312, big5, jis0208, ksx1001-hanja) or a UTF-8 text file. "
                   "Default: fonts_sample/charset.txt, or gb2312-1 with --source.")
@click.option("--chars", metavar="TEXT", help="Render exactly these characters (overrides --charset).")
@click.option("--size", type=click.IntRange(64, 512), default=256, show_default=True, help="Image size in pixels (64-512).")
@click.option("--margin", type=float, default=0.0, show_default=True, help="Uniform margin around the em box, pixels.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.1, show_default=True,
              help="Share of each style's characters held out for validation/evaluation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the train/validation split.")
@click.option("--workers", type=int, default=None, help="Rendering processes. Default: number of CPU cores.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder. Default: WORKDIR/data. A folder is replaced only if fontgen render wrote it.")
@click.option("--force", is_flag=True, help="Replace --out even if it is a folder fontgen did not write "
              "(its files are lost). Without it such a folder is refused.")
@click.pass_obj
def render(workdir: Workdir, sources, targets, charset, chars, size, margin, val_fraction, seed, workers, out, force):
    """Render paired glyph images: the source font gives content, each target font a style.

    Characters count as present in a font only with a real, inked, non-placeholder glyph;
    the report says what each font skipped and why. Writes the dataset folder (manifest +
    memory-mappable arrays) and preview.png.

    \b
    Examples:
      fontgen render
      fontgen render --source Noto.otf --target kai.ttf --target ming.ttc#1 --charset gb2312-1
    """
    from fontgen import render as render_step
    from fontgen.fonts import FontSpec

    out = out or workdir.data
    options = dict(image_size=size, margin=margin, val_fraction=val_fraction, seed=seed, force=force)
    if workers is not None:
        options["workers"] = max(1, workers)
    if sources or targets:
        if not (sources and targets):
            raise click.UsageError("give both --source and at least one --target (or neither, for fonts_sample/)")
        char_list, charset_name = render_step.resolve_chars(charset, chars, "gb2312-1")
        job = render_step.RenderJob(
            source=FontSpec.parse(sources[0]), more_sources=[FontSpec.parse(s) for s in sources[1:]],
            targets=[render_step.StyleFont(i, FontSpec.parse(t).path.stem, FontSpec.parse(t)) for i, t in enumerate(targets)],
            chars=char_list, charset_name=charset_name, out=out, **options)
    else:
        job = render_step.default_job(out, **options)
        if charset or chars:
            job.chars, job.charset_name = render_step.resolve_chars(charset, chars, "gb2312-1")
    report = render_step.render_dataset(job, log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {report.out}: {report.chars} characters, {report.pairs} pairs "
               f"({report.train_pairs} train, {report.val_pairs} validation); preview {report.preview}")


# === train ===
@cli.command()
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder written by `fontgen render`. Default: WORKDIR/data (with --resume: the run's).")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (checkpoint.pt, log.jsonl, samples/). Default: a new WORKDIR/runs/<timestamp>; "
                   "with --resume, WORKDIR/runs/latest. WORKDIR/runs/latest points to the newest run with a "
                   "checkpoint.")
@click.option("--preset", type=click.Choice(["auto", "tiny", "cpu", "full"]),
              help="Size/batch/steps/width defaults (default auto): full = 256 px, ngf/ndf 64, batch 64, 50000 steps, "
                   "perceptual 0.02 (a GPU); cpu = 64 px, ngf 16, ndf 8, no dropout, batch 16, 12000 steps (35 "
                   "passes, at least 5000, over a smaller dataset such as one font's), lr 1e-3 falling to 0 over the "
                   "second half, stroke weight 4, gap weight 16, IoU weight 100, FiLM, constancy and perceptual off, "
                   "at most 15 minutes of training (--time-limit); tiny = a smoke test. auto: full on CUDA, cpu on a CPU. Explicit options "
                   "below override the preset.")
@click.option("--steps", type=int, help="Total optimizer steps of the run (a resumed run continues up to it). "
              "Default: from the preset, or the resumed checkpoint's.")
@click.option("--time-limit", type=float, metavar="MINUTES",
              help="Train for at most this many minutes: when this machine's speed would take longer, the run "
                   "ends at the steps that fit, its lr decay with it (the end follows the speed until the decay begins; a "
                   "resumed run counts its earlier minutes). "
                   "Default: 15 with the cpu preset unless --steps is given (the demo stays under 20 minutes on "
                   "a slow day), else none; 0: none.")
@click.option("--batch-size", type=int, help="Images per step (per process under torchrun). Default: from the preset.")
@click.option("--image-size", type=int, help="Model resolution (64-512, power of two, or 192/384); the data is "
              "resized on the device if it differs. Default: from the preset.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
              help="auto (default): CUDA if present (bf16 autocast, TF32), else CPU. Chosen anew on --resume.")
@click.option("--bf16/--no-bf16", default=None,
              help="bf16 autocast. Default: on CUDA, and on a CPU with bf16 hardware (AMX or AVX512-BF16, with "
                   "channels_last: 13% faster there); fp32 on other CPUs, which would emulate it.")
@click.option("--resume", is_flag=True, help="Continue the run (--run, default runs/latest) from its checkpoint: "
              "same step, optimizer, lr, RNG and data order, and every option it was started with (dataset, "
              "model, losses, schedule). Given again, an option must match, except --steps, --time-limit, --sample-every, "
              "--checkpoint-every, --checkpoint-minutes and --vgg-weights, which may change.")
@click.option("--init-from", type=click.Path(dir_okay=False, path_type=Path), metavar="CHECKPOINT",
              help="Start a new run from a trained checkpoint's weights (same model config; fresh optimizers, "
                   "step 0), e.g. to adapt to a new font with few glyphs.")
@click.option("--freeze-encoder/--no-freeze-encoder", default=None,
              help="Train only G's decoder and style embedding (with --init-from: adapt to a new font without "
                   "forgetting the content encoder). Default: off.")
@click.option("--l1-weight", type=float,
              help="[default: 100] Pixel L1 weight (50-100): pulls the output onto the target; much higher drowns the GAN term "
                   "and blurs.")
@click.option("--stroke-weight", type=float,
              help="Extra L1 weight on ink pixels (of the target or the output): each pixel weighs 1 + W * ink, "
                   "so a missing thin stroke or a break in one costs more than plain L1 charges. Default: 4 with "
                   "the cpu preset (fewer broken strokes, bolder ones), 0 with full and tiny.")
@click.option("--gap-weight", type=float,
              help="Extra L1 weight on the paper of narrow gaps between strokes (those a closing of the target's "
                   "ink fills, ~2 px wide per 64 px), where soft drawings merge strokes. Default: 16 with the cpu "
                   "preset (a fifth to a third fewer merged glyphs), 0 with full and tiny.")
@click.option("--iou-weight", type=float,
              help="Weight of the soft IoU of each glyph's ink (1 - IoU, per glyph, so a hairline style's glyph "
                   "counts as much as a black one). Default: 100 with the cpu preset, 0 with full and tiny.")
@click.option("--const-weight", type=float,
              help="Constancy loss weight (bottleneck of source vs of output); 15 drowned the GAN term. Default: 5 "
                   "(the cpu preset 0: no measurable gain there for 12% of its step).")
@click.option("--perceptual-weight", type=float, default=None,
              help="VGG16 relu1_2+relu2_2 feature L1 weight (0.01-0.05); 0 turns it off (no VGG weights needed). "
                   "Default: 0.02 with the full (GPU) preset, 0 with the cpu and tiny presets.")
@click.option("--category-weight", type=float,
              help="[default: 1] Style-classification weight, the same in D and G.")
@click.option("--vgg-weights", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="VGG16 state dict for the perceptual loss. Default: torchvision's cache under TORCH_HOME "
                   "(never downloaded: offline, put the file there or pass this).")
@click.option("--const-target", type=click.Choice(["fake", "real"]),
              help="[default: fake] Constancy compares encoder(source) with encoder(generated) (zi2zi), or with encoder(target) "
                   "(for comparison only; it never looks at the output).")
@click.option("--perceptual-every", type=int,
              help="[default: 1] Apply the perceptual loss every N steps (debugging only).")
@click.option("--d-steps", type=int, help="[default: 1] D updates per G update (each on the same real batch and "
              "generated glyphs, as zi2zi does: a fresh fake would cost a G pass per update).")
@click.option("--deterministic", is_flag=True, help="Deterministic kernels and no cuDNN autotuning: the same "
              "numbers on every run of the same machine, somewhat slower.")
@click.option("--grad-clip", type=float,
              help="[default: 0] Clip the gradient norm of G and D to this (0: off).")
@click.option("--warmup-steps", type=int,
              help="[default: 0] Ramp the L1 and constancy weights linearly from 0 over these steps (0: off).")
@click.option("--lr", type=float, help="Adam learning rate (betas 0.5, 0.999). Default: 1e-3 with the cpu preset, "
              "2e-4 (zi2zi's) with full and tiny.")
@click.option("--lr-schedule", type=int, metavar="EPOCHS",
              help="[default: 0] Halve the lr every EPOCHS epochs down to 2e-6, as zi2zi does (0: constant).")
@click.option("--lr-decay-steps", type=int, metavar="N",
              help="The lr falls linearly to 0 over the run's last N steps (0: off), counted back from --steps: a "
                   "run resumed with more steps decays again at its new end. Default: half the steps with the cpu "
                   "preset, 0 with full and tiny.")
@click.option("--ema", type=float, metavar="DECAY",
              help="[default: 0] Keep a running average of G's weights (e.g. 0.999) and draw with it in generate, "
                   "evaluate and the samples (0: off; with --lr-decay-steps it added nothing, docs/benchmarks.md).")
@click.option("--ngf", type=int, help="Generator width. Default: from the preset.")
@click.option("--ndf", type=int, help="Discriminator width. Default: from the preset.")
@click.option("--dropout", type=float, help="Dropout in G's inner decoder blocks while training (pix2pix). "
              "Default: 0 with the cpu preset (a short run cannot afford it), 0.5 with full and tiny.")
@click.option("--norm", type=click.Choice(["instance", "batch"]), help="Normalisation. Default: instance.")
@click.option("--self-attention/--no-self-attention", default=None, help="SAGAN self-attention in G. Default: off.")
@click.option("--spectral-norm/--no-spectral-norm", default=None, help="Spectral norm in D. Default: off.")
@click.option("--style-film/--no-style-film", default=None,
              help="The style also scales and shifts every decoder level of G (FiLM), not only the bottleneck. "
                   "Default: on in the cpu preset, off in full (zi2zi's model).")
@click.option("--augment/--no-augment", default=None,
              help="Small random scale/shift, the same for source and target. Default: off.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch. Default: all cores but one "
              "(a core left free keeps a busy machine from stalling every step).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile G and D (faster steps after a slow start).")
@click.option("--sample-every", type=int,
              help="[default: 500] Write samples/step-N.png (source | generated | target of fixed validation glyphs) every N steps.")
@click.option("--checkpoint-every", type=int,
              help="[default: 1000] Write checkpoint.pt (atomically) every N steps, and at the end. Ctrl-C or "
                   "SIGTERM also writes one, then stops.")
@click.option("--checkpoint-minutes", type=float,
              help="[default: 10] Also write checkpoint.pt when this many minutes passed since the last (0: off).")
@click.option("--seed", type=int, help="Seed of weights, data order, dropout. Default: 0 (or the resumed run's).")
@click.pass_obj
def train(workdir: Workdir, data, run_dir, preset, steps, time_limit, batch_size, image_size, device, bf16, resume, init_from,
          freeze_encoder, l1_weight, stroke_weight, gap_weight, iou_weight, const_weight, perceptual_weight, category_weight, vgg_weights,
          const_target,
          perceptual_every, d_steps, grad_clip, warmup_steps, lr, lr_schedule, lr_decay_steps, ema, ngf, ndf, dropout,
          norm, self_attention, spectral_norm, style_film, augment, threads, deterministic, compile_, sample_every, checkpoint_every, checkpoint_minutes,
          seed):
    """Train the Zi2Zi GAN on a rendered dataset; writes a run folder with checkpoint.pt.

    Multi-GPU: `torchrun --nproc-per-node N -m fontgen train ...` (batch size per GPU).

    \b
    Examples:
      fontgen train                                   # preset by device
      fontgen train --perceptual-weight 0 --steps 2000
      fontgen train --resume --steps 20000
      fontgen train --init-from runs/base/checkpoint.pt --freeze-encoder --data newfont-data
    """
    import os

    from fontgen import train as train_step

    config = train_step.TrainConfig(
        data=data, default_data=workdir.data, runs_dir=workdir.runs, run=run_dir, preset=preset, device=device, bf16=bf16,
        steps=steps, time_limit=time_limit,
        batch_size=batch_size, image_size=image_size, ngf=ngf, ndf=ndf, dropout=dropout, norm=norm, self_attention=self_attention,
        style_film=style_film, spectral_norm=spectral_norm, resume=resume, init_from=init_from, freeze_encoder=freeze_encoder,
        l1_weight=l1_weight, stroke_weight=stroke_weight, gap_weight=gap_weight, iou_weight=iou_weight, const_weight=const_weight,
        perceptual_weight=perceptual_weight,
        category_weight=category_weight, vgg_weights=vgg_weights, const_target=const_target,
        perceptual_every=perceptual_every, d_steps=d_steps, grad_clip=grad_clip, warmup_steps=warmup_steps, lr=lr,
        lr_schedule=lr_schedule, lr_decay_steps=lr_decay_steps, ema=ema, augment=augment, compile=compile_ or None, sample_every=sample_every,
        checkpoint_every=checkpoint_every, checkpoint_minutes=checkpoint_minutes, seed=seed, threads=threads,
        deterministic=deterministic)
    path = train_step.train(config, log=lambda line: click.echo(line, err=True))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one line, not one per process
        click.echo(f"checkpoint {path}")


# === generate ===
@cli.command()
@click.option("--style", required=True, metavar="ID|NAME|BLEND",
              help="Style id or name from the checkpoint's style table, or a blend such as 3:0.5,12:0.5.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder to use. Default: WORKDIR/runs/latest.")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Checkpoint file (instead of --run).")
@click.option("--target-font", metavar="FONT",
              help="The font to complete, if not the style's font from training; only what it lacks is drawn.")
@click.option("--chars", metavar="TEXT", help="Draw these characters instead of the missing ones.")
@click.option("--charset", metavar="NAME|FILE", help="Draw this charset's characters instead of the missing ones.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder. Default: WORKDIR/generated/style-ID. A folder is replaced only if fontgen "
                   "generate wrote it.")
@click.option("--force", is_flag=True, help="Replace --out even if it is a folder fontgen did not write "
              "(its files are lost). Without it such a folder is refused.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--seed", type=int, help="Draw another version, one per seed: dropout on, or for a model trained without dropout "
              "the source moved by up to 2 px and the drawing moved back (default: the one deterministic drawing).")
@click.option("--repair/--no-repair", default=True, show_default=True,
              help="Join strokes the generator broke: bridge gaps of at most 3/64 em through faint ink, while the "
                   "glyph has more pieces than the source glyph (never across paper, never below its count).")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True,
              help="Draw each glyph five times, the source moved 1 px (at 64 px) up, down, left and right, and "
                   "average the drawings moved back: fewer broken strokes (a seed draws one sample instead).")
@click.option("--align/--no-align", default=True, show_default=True,
              help="A model with several source fonts draws each glyph from each; move the drawings onto each "
                   "other (a small smooth warp, never new strokes) before averaging, so strokes they place a "
                   "little apart come out as one stroke, not a blob (--no-align: the plain weighted mean).")
@click.option("--exemplars/--no-exemplars", default=True, show_default=True,
              help="Blend each drawing with its redrawing from the font's own glyphs: every part of the glyph "
                   "taken from the glyphs whose drawing and source look most alike there, so a component the "
                   "font has comes out as the font draws it (one style only, not a blend).")
@click.option("--interpolate", nargs=2, metavar="A B", help="Also write a strip per glyph blending style A into B.")
@click.option("--steps", type=int, default=5, show_default=True, help="Frames of each --interpolate strip.")
@click.pass_obj
def generate(workdir: Workdir, style, run_dir, checkpoint, target_font, chars, charset, out, force, batch_size,
             device, seed, repair, ensemble, align, exemplars, interpolate, steps):
    """Draw the glyphs a style's font lacks (uXXXX.png + manifest.json + contact-sheet.png).

    By default: the training charset's characters that the source font has and the style's
    font lacks. Glyphs that come out nearly empty or broken into pieces are flagged.

    \b
    Examples:
      fontgen generate --style 12
      fontgen generate --style kai-arphic-ukai --chars 永国
      fontgen generate --style 3:0.5,12:0.5 --out blend/
    """
    from fontgen import generate as generate_step
    from fontgen.charsets import load_charset, unique_chars
    from fontgen.checkpoint import resolve_checkpoint
    from fontgen.fonts import FontSpec

    if chars and charset:
        raise click.UsageError("give --chars or --charset, not both")
    path = resolve_checkpoint(run_dir, checkpoint, workdir)
    char_list = unique_chars(chars) if chars else (load_charset(charset) if charset else None)
    job = generate_step.GenerateJob(checkpoint=path, style=style, target_font=FontSpec.parse(target_font) if target_font else None,
                                    chars=char_list, batch_size=batch_size, device=device, seed=seed,
                                    interpolate=tuple(interpolate) if interpolate else None, steps=steps,
                                    out=out, generated_root=workdir.generated, force=force, repair=repair,
                                    ensemble=ensemble, align=align, exemplars=exemplars)
    report = generate_step.generate_glyphs(job, log=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {report.glyphs} glyphs of style {report.style_id} to {report.out} in {report.seconds:.1f}s; "
               f"contact sheet {report.contact_sheet}")
    for kind, flagged in report.flagged.items():
        if flagged:
            click.echo(f"flagged {kind}: {len(flagged)} glyphs: {''.join(flagged[:40])}", err=True)


def newest_generated(workdir: Workdir) -> Path:
    """The most recently written generated-glyph folder under WORKDIR/generated."""
    from fontgen.errors import FontgenError

    candidates = [p for p in workdir.generated.glob("*") if p.is_dir() and not p.name.startswith(".")] \
        if workdir.generated.is_dir() else []
    if not candidates:
        raise FontgenError(f"no generated glyph folders under {workdir.generated}; run `fontgen generate` "
                           "or pass GLYPH_DIR")
    return max(candidates, key=lambda p: p.stat().st_mtime)


# === review ===
@cli.command()
@click.argument("glyph_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--no-browser", "no_browser", is_flag=True, help="Print the address instead of opening a browser.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="cpu", show_default=True,
              help="Where alternative drawings are drawn (a few glyphs at a time: the CPU is enough).")
@click.pass_obj
def review(workdir: Workdir, glyph_dir, port, no_browser, device):
    """Look at every generated glyph and accept, reject or redraw it, on a local web page.

    GLYPH_DIR is a folder written by `fontgen generate` (default: the newest under
    WORKDIR/generated/). The page shows every glyph beside its source glyph, flagged ones
    first; decide with the mouse or the keyboard, ask for alternative drawings (seeded
    samples of the checkpoint) and pick one, and judge glyphs in a line of text set with
    the target font's own glyphs. Decisions are saved as they are made in
    GLYPH_DIR/review.json; `fontgen vectorize` honours them. The server listens on
    127.0.0.1 only and needs the random token in the address it prints. Ctrl-C stops it.

    \b
    Examples:
      fontgen review
      fontgen review fontgen-work/generated/style-12 --no-browser --port 8765
    """
    from fontgen import review as review_step

    if glyph_dir is None:
        glyph_dir = newest_generated(workdir)
    counts = review_step.serve(glyph_dir, port=port, open_browser=not no_browser, device=device,
                               log=lambda line: click.echo(line, err=True))
    click.echo(f"review of {glyph_dir}: {counts.accepted} accepted, {counts.rejected} rejected, "
               f"{counts.undecided} undecided (saved in {Path(glyph_dir) / review_step.REVIEW_NAME})")


# === vectorize ===
@cli.command()
@click.argument("glyph_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Font to write: .ttf (TrueType outlines), .otf (CFF outlines, cubic curves), or .woff/.woff2 "
                   "for a web font. Default: WORKDIR/fonts/<family>-fontgen-style-ID.ttf (or "
                   "<target>-fontgen-style-ID.ttf, .otf for a CFF target).")
@click.option("--force", is_flag=True, help="Replace --out even if it is a file fontgen did not write.")
@click.option("--merge-into", "merge_into", metavar="FONT",
              help="Add the glyphs to a copy of this font (path or path#N); the input is never modified.")
@click.option("--replace", is_flag=True, help="With --merge-into: replace characters the font already has.")
@click.option("--to-truetype", "to_truetype", is_flag=True,
              help="With --merge-into a CFF (PostScript-outline .otf) font: convert all its outlines to TrueType "
                   "quadratics and write a .ttf. Default: a CFF font stays CFF, its own glyphs untouched.")
@click.option("--ufo", type=click.Path(path_type=Path), metavar="OUT.ufo",
              help="Also write the traced glyphs as a UFO, to correct them in a font editor and build again with "
                   "fontmake.")
@click.option("--workers", type=int, default=None, help="Tracing processes. Default: min(CPU cores, 4).")
@click.option("--units-per-em", "units_per_em", type=int,
              help="Geometry for a folder without manifest.json: UPM of the font the images were drawn for.")
@click.option("--em-top", "em_top", type=float, help="With --units-per-em: top of the em box, font units (default 0.88 em).")
@click.option("--margin", type=float, help="With --units-per-em: margin around the em box, pixels (default 0).")
@click.option("--fit-error", "fit_error", type=float, default=0.3, show_default=True,
              help="Max distance of the fitted curves from the traced outline, pixels.")
@click.option("--corner-angle", "corner_angle", type=float, default=50.0, show_default=True,
              help="Turn (degrees, within about 2.5 px) that makes a sharp corner instead of a smooth curve.")
@click.option("--smooth", type=float, default=0.0, show_default=True,
              help="Gaussian blur (sigma, pixels) before tracing: calms the ragged edges of low-resolution GAN "
                   "output (0.6-1.0 at 64 px); 0 traces the image as it is.")
@click.option("--min-speck-area", "min_speck_area", type=float, default=3.0, show_default=True,
              help="Drop ink specks and holes smaller than this, square pixels.")
@click.option("--min-iou", "min_iou", type=float, default=0.75, show_default=True,
              help="Leave out a glyph whose outline, rendered back from the font, matches its image worse than "
                   "this (IoU); the summary and OUT-left-out.txt list them.")
@click.option("--strict", is_flag=True, help="Refuse the whole font (write nothing) if any glyph is below --min-iou.")
@click.option("--family", metavar="NAME", help="Family name of the written font. Default: \"<Family> fontgen\" "
              "(with --merge-into, the target's family plus \"fontgen\": a modified font must not carry the "
              "original's name).")
@click.option("--accepted-only", "accepted_only", is_flag=True,
              help="Only glyphs accepted in `fontgen review` (review.json); without it undecided glyphs are "
                   "included too. Rejected glyphs are always left out.")
@click.pass_obj
def vectorize(workdir: Workdir, glyph_dir, out, force, merge_into, replace, to_truetype, ufo, workers, units_per_em,
              em_top, margin, fit_error, corner_angle, smooth, min_speck_area, min_iou, strict, family, accepted_only):
    """Trace generated glyph images into outlines and write a verified TTF (or OTF).

    GLYPH_DIR holds uXXXX.png images and manifest.json (default: the newest folder under
    WORKDIR/generated/). Without a manifest give the geometry with --units-per-em. The
    folder's review.json (`fontgen review`) applies: rejected glyphs are left out and a
    chosen alternative is traced instead of the original. The font is checked (fontTools,
    OpenType Sanitizer, render-back IoU) before it is kept; a specimen sheet is written
    beside it.

    \b
    Examples:
      fontgen vectorize
      fontgen vectorize fontgen-work/generated/style-12 --merge-into mykai.ttf
      fontgen vectorize edited/ --units-per-em 1000 --out edited.ttf
      fontgen vectorize --merge-into SourceHanSansSC-Regular.otf --ufo new-glyphs.ufo
    """
    from fontgen import vectorize as vec

    if glyph_dir is None:
        glyph_dir = newest_generated(workdir)
        click.echo(f"vectorizing {glyph_dir}", err=True)
    if replace and not merge_into:
        raise click.UsageError("--replace only makes sense with --merge-into")
    if to_truetype and not merge_into:
        raise click.UsageError("--to-truetype only makes sense with --merge-into (name a standalone font .ttf)")
    if units_per_em is None and (em_top is not None or margin is not None):
        raise click.UsageError("--em-top and --margin need --units-per-em")
    options = vec.TraceOptions(fit_error=fit_error, corner_angle=corner_angle, min_speck_area=min_speck_area,
                               smooth=smooth)
    result = vec.vectorize_folder(glyph_dir, out=out, merge_into=merge_into, replace=replace, workers=workers,
                                  units_per_em=units_per_em, em_top=em_top, margin=margin, options=options,
                                  fonts_dir=workdir.fonts, min_iou=min_iou, force=force, strict=strict,
                                  family=family, accepted_only=accepted_only,
                                  log=lambda line: click.echo(line, err=True), to_truetype=to_truetype, ufo=ufo)
    click.echo(result.summary())


# === evaluate ===
@cli.command()
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run folder to evaluate. Default: WORKDIR/runs/latest (works while it trains).")
@click.option("--checkpoint", type=click.Path(path_type=Path), help="Checkpoint file (instead of --run).")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="Dataset folder. Default: the one the checkpoint was trained on.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Where metrics.json, worst.png and worst-display.png go. Default: RUN/eval (RUN/eval-DATA "
                   "with another --data).")
@click.option("--force", is_flag=True, help="Write into --out even if it is a folder fontgen did not write.")
@click.option("--compare", "compare_run", type=click.Path(file_okay=False, path_type=Path),
              help="A second run folder to evaluate on the same data and print side by side.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--display/--no-display", default=True, show_default=True,
              help="Also score what a designer sees: each glyph generated and vectorized with the defaults, its "
                   "outline drawn at 256 px against the real glyph (IoU, SSIM, L1, pieces, edge); worst-display.png.")
@click.option("--repair/--no-repair", default=True, show_default=True,
              help="Display size: score the glyphs as `fontgen generate` writes them by default, broken strokes "
                   "joined (--no-repair: the generator's raw output). Model-size figures are always raw.")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True,
              help="Draw the glyphs as `fontgen generate` does by default, the mean of five placements 1 px "
                   "apart (--no-ensemble: one pass), for both the model-size and display-size figures.")
@click.option("--align/--no-align", default=True, show_default=True,
              help="Several source fonts: align their drawings before averaging, as `fontgen generate` does by "
                   "default (--no-align: the plain weighted mean).")
@click.option("--exemplars/--no-exemplars", default=True, show_default=True,
              help="Blend the drawings with their redrawing from the style font's own glyphs, as `fontgen generate` "
                   "does by default; the held-out characters are never lent.")
@click.option("--display-glyphs", type=click.IntRange(min=1), metavar="N",
              help="Display-size scoring on at most N held-out glyphs per style, evenly spread (tracing and "
                   "scoring take 30-60 ms a glyph on a CPU core). Default: all of them.")
@click.pass_obj
def evaluate(workdir: Workdir, run_dir, checkpoint, data, out, force, compare_run, batch_size, device, display,
             repair, ensemble, align, exemplars, display_glyphs):
    """Measure quality on held-out characters, per style and overall: L1, RMSE, SSIM, IoU at
    the model's size; and at display size (256 px), through generate + vectorize: IoU, SSIM,
    L1, shares of glyphs broken into more or merged into fewer pieces, outline length ratio.

    \b
    Examples:
      fontgen evaluate
      fontgen evaluate --display-glyphs 50
      fontgen evaluate --run fontgen-work/runs/a --compare fontgen-work/runs/b
    """
    from fontgen import evaluate as evaluate_step
    from fontgen.checkpoint import resolve_checkpoint

    path = resolve_checkpoint(run_dir, checkpoint, workdir)
    job = evaluate_step.EvaluateJob(checkpoint=path, out=out, data=data, force=force, batch_size=batch_size,
                                    device=device, display=display, display_glyphs=display_glyphs, repair=repair,
                                    ensemble=ensemble, align=align, exemplars=exemplars)
    log = lambda line: click.echo(line, err=True)  # noqa: E731
    results = evaluate_step.evaluate_checkpoint(job, log=log)
    other = None
    if compare_run:
        other_path = resolve_checkpoint(compare_run, None, workdir)
        other_job = evaluate_step.EvaluateJob(checkpoint=other_path, data=data or Path(results["dataset"]),
                                              batch_size=batch_size, device=device, display=display,
                                              display_glyphs=display_glyphs, repair=repair, ensemble=ensemble,
                                              align=align, exemplars=exemplars)
        other = evaluate_step.evaluate_checkpoint(other_job, log=log)
        click.echo(f"A = {path} (step {results['step']})\nB = {other_path} (step {other['step']})")
    click.echo(evaluate_step.format_table(results, other))
    sheets = Path(results["out"]) / "worst.png"
    if "display" in results:
        sheets = f"{sheets}, {Path(results['out']) / 'worst-display.png'} (display size)"
    click.echo(f"metrics {Path(results['out']) / 'metrics.json'}; worst glyphs {sheets}")


# === complete ===
@cli.command()
@click.argument("target_font", metavar="TARGET_FONT")
@click.option("--source", "sources", metavar="FONT", multiple=True,
              help="Content font that covers the charset (e.g. Noto Sans CJK SC). Give it more than once (a "
                   "sans, a serif, a Ming, a Song...): the one whose glyphs are nearest the target's own becomes "
                   "the primary, and up to three more that draw as much of what it lacks are further drawings of "
                   "each character, which the model learns from and generate averages (two Mincho fonts, four "
                   "sources: display IoU 0.649 and 0.653 against 0.627 and 0.625 from the nearest alone). Of a "
                   "collection named without #N, the face nearest the target's own glyphs is used (a Japanese "
                   "Mincho learns from Noto Serif CJK JP, whose character forms are its own). "
                   "Default: the source of fonts_sample/ (800 common hanzi only: render says how much it can draw).")
@click.option("--charset", metavar="NAME|FILE", default="gb2312-1", show_default=True,
              help="The characters the font should have (builtin name or UTF-8 text file).")
@click.option("--chars", metavar="TEXT", help="Exactly these characters (overrides --charset).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The completed font. Default: WORKDIR/fonts/<target>-fontgen.ttf.")
@click.option("--family", metavar="NAME", help="Family name of the completed font. Default: \"<Family> fontgen\".")
@click.option("--preset", type=click.Choice(["auto", "tiny", "cpu", "full"]),
              help="Training preset (see fontgen train --help). Default: auto.")
@click.option("--steps", type=int, help="Training steps. Default: the preset's.")
@click.option("--init-from", type=click.Path(dir_okay=False, path_type=Path), metavar="CHECKPOINT",
              help="Fine-tune from a trained checkpoint instead of training from scratch.")
@click.option("--min-iou", type=float, default=0.75, show_default=True,
              help="Leave out a glyph whose traced outline renders back worse than this (see vectorize).")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads. Default: all cores but one.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.pass_obj
def complete(workdir: Workdir, target_font, sources, charset, chars, out, family, preset, steps, init_from, min_iou,
             threads, device):
    """Complete TARGET_FONT in one command: render it against the sources (of several, the
    nearest its style first), train, generate what it lacks, merge the traced glyphs into a
    renamed copy of it, and evaluate. On a CPU the model is 128 px at ngf 12, trained for 35 passes over
    the font's own glyphs (about 5,000 steps for a GB2312 font: 17-21 minutes in all, measured with other runs beside it).

    Everything goes to WORKDIR/complete/<font>. Run the same command again after an
    interruption and it goes on where it stopped (training resumes from its checkpoint).

    \b
    Examples:
      fontgen complete MyMincho.otf --source NotoSerifCJK.ttc --source NotoSansCJK.ttc --source uming.ttc
      fontgen complete MyKai.ttf --source NotoSansCJK-Regular.ttc --charset gb2312 --steps 6000
    """
    from fontgen import complete as complete_step
    from fontgen.fonts import FontSpec
    from fontgen.render import SAMPLE_DIR, sample_manifest

    from fontgen.charsets import unique_chars

    target = FontSpec.parse(target_font)
    if sources:
        source_specs = [FontSpec.parse(source) for source in sources]
    else:
        entry = sample_manifest()["source"]
        source_specs = [FontSpec(SAMPLE_DIR / entry["path"], int(entry.get("face", 0)))]
    job = complete_step.CompleteJob(target=target, sources=source_specs, charset=charset,
                                    chars=unique_chars(chars) if chars else None,
                                    work=complete_step.work_folder(workdir.root, target), out=out,
                                    fonts_dir=workdir.fonts, preset=preset, steps=steps, threads=threads,
                                    init_from=init_from, family=family, min_iou=min_iou, device=device)
    report = complete_step.complete_font(job, log=lambda line: click.echo(line, err=True))
    click.echo(report.summary())
