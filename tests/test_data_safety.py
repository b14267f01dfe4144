"""Never lose a user's data: output folders, resume, interrupts, concurrent runs, clear errors.

Each test here failed on fontgen before the data-safety work (issue 9); real fonts, real
tiny trainings on the CPU, real subprocesses and signals where the behaviour is about them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fontTools.ttLib import TTFont

from fontgen.checkpoint import load_checkpoint
from fontgen.cli import cli
from fontgen.dataset import load_dataset
from fontgen.errors import FontgenError
from fontgen.render import SAMPLE_DIR, default_job, render_dataset
from fontgen.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SOURCE = SAMPLE_DIR / "source_sans_regular.otf"
KAI = SAMPLE_DIR / "style07_kai_ukai.ttf"
HANDWRITING_STYLE = 12


def invoke(*args: str, workdir: Path | None = None):
    prefix = ["--workdir", str(workdir)] if workdir is not None else []
    return CliRunner().invoke(cli, [*prefix, *args])


def fontgen_process(*args: str, cwd: Path = ROOT, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "fontgen", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def tiny_config(data: Path, root: Path, **overrides) -> TrainConfig:
    options = dict(data=data, runs_dir=root / "runs", preset="tiny", perceptual_weight=0.0, progress=False,
                   sample_every=1000, checkpoint_every=1000)
    options.update(overrides)
    return TrainConfig(**options)


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(checkpoint)
    return {f"{net}.{k}": v for net in ("generator", "discriminator", "generator_ema") for k, v in state.get(net, {}).items()}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 30
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def wait_for_log_lines(run: Path, count: int, proc: subprocess.Popen, limit_s: float = 120) -> None:
    deadline = time.monotonic() + limit_s
    log = run / "log.jsonl"
    while time.monotonic() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"the run wrote fewer than {count} log lines in {limit_s} s")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """20 characters x 2 styles at 64 px: an epoch is a handful of tiny steps."""
    out = tmp_path_factory.mktemp("safety-data") / "data"
    job = default_job(out, image_size=64, val_fraction=0.2, workers=1)
    job.targets = [t for t in job.targets if t.id in (7, HANDWRITING_STYLE)]
    job.chars = job.chars[::40][:20]
    render_dataset(job, progress=False, log=lambda line: None)
    return out


def user_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("the designer's notes")
    return path


# ---------------------------------------------------------------------------------------
# 1. An --out folder fontgen did not write is never replaced


def test_render_refuses_a_folder_it_did_not_write(tmp_path):
    keep = user_folder(tmp_path / "keep")
    result = invoke("render", "--source", str(SOURCE), "--target", str(KAI), "--chars", "永国", "--size", "64",
                    "--out", str(keep))
    assert result.exit_code == 1 and "not written by fontgen render" in result.output and "--force" in result.output
    assert (keep / "notes.txt").read_text() == "the designer's notes"
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]
    # its own dataset folder is replaced as before; --force replaces anything
    ok = invoke("render", "--source", str(SOURCE), "--target", str(KAI), "--chars", "永国", "--size", "64",
                "--out", str(tmp_path / "data"))
    assert ok.exit_code == 0, ok.output
    again = invoke("render", "--source", str(SOURCE), "--target", str(KAI), "--chars", "永国一", "--size", "64",
                   "--out", str(tmp_path / "data"))
    assert again.exit_code == 0, again.output
    assert load_dataset(tmp_path / "data").requested_chars() == list("永国一")
    forced = invoke("render", "--source", str(SOURCE), "--target", str(KAI), "--chars", "永国", "--size", "64",
                    "--out", str(keep), "--force")
    assert forced.exit_code == 0 and not (keep / "notes.txt").exists()


def test_render_out_dot_is_refused(tmp_path, monkeypatch):
    user_folder(tmp_path / "project")
    monkeypatch.chdir(tmp_path / "project")
    result = invoke("render", "--source", str(SOURCE), "--target", str(KAI), "--chars", "永", "--size", "64",
                    "--out", ".")
    assert result.exit_code == 1 and "is the current folder" in result.output
    assert "unexpected error" not in result.output
    assert sorted(p.name for p in Path(".").iterdir()) == ["notes.txt"]


def test_generate_and_evaluate_refuse_a_folder_they_did_not_write(tiny_run, tmp_path):
    workdir = tiny_run.parents[2]
    keep = user_folder(tmp_path / "keep")
    result = invoke("generate", "--style", "0", "--chars", "永国", "--out", str(keep), workdir=workdir)
    assert result.exit_code == 1 and "not written by fontgen generate" in result.output
    result = invoke("evaluate", "--out", str(keep), workdir=workdir)
    assert result.exit_code == 1 and "not written by fontgen evaluate" in result.output
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]
    ok = invoke("generate", "--style", "0", "--chars", "永国", "--out", str(tmp_path / "mine"), workdir=workdir)
    assert ok.exit_code == 0, ok.output
    again = invoke("generate", "--style", "0", "--chars", "永", "--out", str(tmp_path / "mine"), workdir=workdir)
    assert again.exit_code == 0 and sorted(p.name for p in (tmp_path / "mine").glob("u*.png")) == ["u6C38.png"]


def test_train_refuses_a_run_folder_it_did_not_write(data, tmp_path):
    keep = user_folder(tmp_path / "keep")
    with pytest.raises(FontgenError, match="not written by fontgen train"):
        train(tiny_config(data, tmp_path, run=keep, steps=2), log=None)
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]


def test_vectorize_refuses_to_overwrite_a_file_it_did_not_write(tiny_run, tmp_path):
    workdir = tiny_run.parents[2]
    glyphs = tmp_path / "glyphs"
    assert invoke("generate", "--style", "7", "--chars", "永国", "--out", str(glyphs), workdir=workdir).exit_code == 0
    precious = tmp_path / "precious.ttf"
    shutil.copy(KAI, precious)
    before = precious.read_bytes()
    result = invoke("vectorize", str(glyphs), "--out", str(precious), "--min-iou", "0")
    assert result.exit_code == 1 and "not a font fontgen wrote" in result.output
    assert precious.read_bytes() == before
    ours = tmp_path / "ours.ttf"
    for _ in range(2):  # its own font is replaced
        result = invoke("vectorize", str(glyphs), "--out", str(ours), "--min-iou", "0")
        assert result.exit_code == 0, result.output


# ---------------------------------------------------------------------------------------
# 2. --resume restores every option


NON_DEFAULT = dict(lr=5e-4, lr_schedule=1, l1_weight=50.0, const_weight=2.0, category_weight=0.5,
                   warmup_steps=10, d_steps=2, grad_clip=5.0, const_target="real", seed=5, ema=0.9)


def test_resume_restores_every_option(data, tmp_path):
    """N steps with non-default options == a part of them and a plain --resume (schedule across epochs)."""
    probe = tiny_config(data, tmp_path, run=tmp_path / "probe", steps=1, **NON_DEFAULT)
    steps_per_epoch = len(load_dataset(data).pair_indices("train")) // 4
    total = max(2 * steps_per_epoch + 3, 14)  # the lr halves at each epoch boundary, warm-up ramps over 10
    assert 3 <= steps_per_epoch < 20 and probe.lr_schedule == 1
    straight = train(tiny_config(data, tmp_path, run=tmp_path / "straight", steps=total, **NON_DEFAULT), log=None)
    first = tiny_config(data, tmp_path, run=tmp_path / "parts", steps=5, **NON_DEFAULT)
    train(first, log=None)
    said = []
    resumed = train(TrainConfig(run=tmp_path / "parts", runs_dir=tmp_path / "runs", resume=True, steps=total,
                                progress=False), log=said.append)
    assert_same_weights(straight, resumed)
    assert "generator_ema.down.0.weight" in weights(resumed)
    saved = json.loads((tmp_path / "parts" / "train_config.json").read_text())["train"]
    for name, value in NON_DEFAULT.items():
        assert saved[name] == value, name
    log = [json.loads(line) for line in (tmp_path / "parts" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["lr"] < NON_DEFAULT["lr"]  # the schedule went on past the epoch boundary


def test_resume_keeps_the_lr_decay_and_moves_it_to_the_new_end(data, tmp_path):
    """--lr-decay-steps counts back from --steps: a run resumed with more steps decays at its new end."""
    run = tmp_path / "run"
    train(tiny_config(data, tmp_path, run=run, steps=3, lr=1e-3, lr_decay_steps=4), log=None)
    train(TrainConfig(run=run, runs_dir=tmp_path / "runs", resume=True, steps=8, progress=False), log=None)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 9))
    # step s trains at lr x min(1, (steps - s + 1) / 4): steps 1-3 closed a 3-step run, 4-8 an 8-step one
    assert [r["lr"] for r in log] == pytest.approx([1e-3 * f for f in (3 / 4, 2 / 4, 1 / 4, 1, 1, 3 / 4, 2 / 4, 1 / 4)])


def test_a_run_older_than_an_option_resumes_without_it(data, tmp_path):
    """A checkpoint written before --iou-weight / --lr-decay-steps / --ema existed resumes with them
    off (as it was trained), not with what today's cpu preset would choose."""
    from fontgen.checkpoint import save_checkpoint

    run = tmp_path / "run"
    path = train(tiny_config(data, tmp_path, run=run, steps=2, preset="cpu", batch_size=4), log=None)
    state = load_checkpoint(path)
    for name in ("iou_weight", "lr_decay_steps", "ema"):
        del state["train_config"][name]
    save_checkpoint(path, state)
    train(TrainConfig(run=run, runs_dir=tmp_path / "runs", resume=True, steps=3, progress=False), log=None)
    resumed = load_checkpoint(path)["train_config"]
    assert (resumed["iou_weight"], resumed["lr_decay_steps"], resumed["ema"]) == (0.0, 0, 0.0)
    assert resumed["stroke_weight"] == 4.0  # what the run has comes back as before
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["g_iou"] == 0 and log[-1]["lr"] == 1e-3


def test_resume_refuses_a_different_option_and_accepts_more_steps(data, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(data, tmp_path, run=run, steps=3, l1_weight=50.0, warmup_steps=10), log=None)
    before = (run / "checkpoint.pt").read_bytes()
    with pytest.raises(FontgenError, match=r"--l1-weight 100.0 \(the run has 50.0\)"):
        train(TrainConfig(run=run, runs_dir=tmp_path / "runs", resume=True, l1_weight=100.0, steps=6,
                          progress=False), log=None)
    assert (run / "checkpoint.pt").read_bytes() == before
    said = []
    train(TrainConfig(run=run, runs_dir=tmp_path / "runs", resume=True, l1_weight=50.0, steps=5,
                      checkpoint_every=2, progress=False), log=said.append)
    assert any(line.startswith("fontgen train: resuming with") and "--checkpoint-every 2 (the run has 1000)" in line
               and "--steps 5 (the run has 3)" in line for line in said)
    assert load_checkpoint(run / "checkpoint.pt")["step"] == 5


def test_cli_resume_keeps_the_options_it_was_started_with(data, tmp_path):
    work = tmp_path / "work"
    base = ["train", "--data", str(data), "--preset", "tiny", "--perceptual-weight", "0", "--sample-every", "100"]
    assert invoke(*base, "--steps", "3", "--l1-weight", "50", "--warmup-steps", "10", workdir=work).exit_code == 0
    result = invoke("train", "--resume", "--steps", "5", workdir=work)  # no --data, no loss options
    assert result.exit_code == 0, result.output
    run = (work / "runs" / "latest").resolve()
    config = json.loads((run / "train_config.json").read_text())["train"]
    assert (config["l1_weight"], config["warmup_steps"], config["preset"]) == (50.0, 10, "tiny")
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    # warm-up still ramping from 50: step 4's L1 term is (3/10) * 50 * L1, not the default 100 * L1
    assert log[3]["g_l1"] < 0.5 * 50 * 1.0 and log[3]["g_loss"] < 40


# ---------------------------------------------------------------------------------------
# 3 and 4. Ctrl-C writes a checkpoint that resumes exactly; a second run on the same folder is refused


def test_sigint_checkpoints_the_current_step_and_resumes_exactly(data, tmp_path):
    run = tmp_path / "interrupted"
    common = ["--data", str(data), "--preset", "tiny", "--perceptual-weight", "0", "--sample-every", "100000",
              "--seed", "2"]
    proc = fontgen_process("--workdir", str(tmp_path / "work"), "train", *common, "--run", str(run),
                           "--steps", "100000")
    wait_for_log_lines(run, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "stopped by SIGINT" in err and f"--resume --run {run}" in err
    stopped_at = load_checkpoint(run / "checkpoint.pt")["step"]
    assert stopped_at == len((run / "log.jsonl").read_text().splitlines()) >= 5
    total = stopped_at + 6
    resume = fontgen_process("--workdir", str(tmp_path / "work"), "train", "--resume", "--run", str(run),
                             "--steps", str(total))
    assert resume.wait(timeout=300) == 0, resume.communicate()
    straight = fontgen_process("--workdir", str(tmp_path / "work"), "train", *common, "--run",
                               str(tmp_path / "straight"), "--steps", str(total))
    assert straight.wait(timeout=300) == 0, straight.communicate()
    assert_same_weights(tmp_path / "straight" / "checkpoint.pt", run / "checkpoint.pt")


def test_a_second_run_on_the_same_folder_is_refused(data, tmp_path):
    run = tmp_path / "busy"
    proc = fontgen_process("--workdir", str(tmp_path / "work"), "train", "--data", str(data), "--preset", "tiny",
                           "--perceptual-weight", "0", "--run", str(run), "--steps", "100000")
    try:
        wait_for_log_lines(run, 2, proc)
        with pytest.raises(FontgenError, match=rf"run folder {run} is in use by another fontgen process "
                                               rf"\(pid {proc.pid}\)"):
            train(tiny_config(data, tmp_path, run=run, steps=3), log=None)
        with pytest.raises(FontgenError, match="in use by another fontgen process"):
            train(tiny_config(data, tmp_path, run=run, resume=True, steps=3), log=None)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and "stopped by SIGTERM" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len((run / "log.jsonl").read_text().splitlines()) == load_checkpoint(run / "checkpoint.pt")["step"]


def test_checkpoints_also_come_on_a_clock(data, tmp_path, monkeypatch):
    import fontgen.train as train_module

    clock = iter(range(0, 10_000, 400))  # every call: 400 s later
    monkeypatch.setattr(train_module.time, "monotonic", lambda: next(clock))
    saved = []
    real_save = train_module.Trainer.save
    monkeypatch.setattr(train_module.Trainer, "save", lambda self, step: (saved.append(step), real_save(self, step)))
    train(tiny_config(data, tmp_path, run=tmp_path / "clock", steps=4, checkpoint_minutes=10), log=None)
    assert saved and saved[0] < 4  # long before --checkpoint-every 1000


# ---------------------------------------------------------------------------------------
# 5. generate works from any folder after `render --chars`, and notices a changed font


def test_generate_from_another_folder_after_render_chars(tmp_path, monkeypatch):
    fonts = tmp_path / "project" / "fonts"
    fonts.mkdir(parents=True)
    shutil.copy(SOURCE, fonts / "source.otf")
    shutil.copy(KAI, fonts / "kai.ttf")
    work = tmp_path / "project" / "work"
    monkeypatch.chdir(tmp_path / "project")
    chars = "永国一二三十大人口日月山水火木金土"
    result = invoke("render", "--source", "fonts/source.otf", "--target", "fonts/kai.ttf", "--chars", chars,
                    "--size", "64", "--val-fraction", "0.2", workdir=Path("work"))
    assert result.exit_code == 0, result.output
    result = invoke("train", "--preset", "tiny", "--steps", "2", "--perceptual-weight", "0", workdir=Path("work"))
    assert result.exit_code == 0, result.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (work / "data").rename(tmp_path / "archived-data")  # the checkpoint alone knows the charset
    # the kai font lacks none of these, so completing it is nothing to do; with --chars it redraws them
    result = invoke("generate", "--style", "0", workdir=work)
    assert "unknown charset" not in result.output
    assert result.exit_code == 1 and "already has all" in result.output, result.output
    result = invoke("generate", "--style", "0", "--chars", "永国", workdir=work)
    assert result.exit_code == 0, result.output
    with open(fonts / "kai.ttf", "ab") as fh:  # the designer changed the font since
        fh.write(b"\0" * 4)
    result = invoke("generate", "--style", "0", "--chars", "永国", workdir=work)
    assert result.exit_code == 0 and "has changed since the dataset was rendered" in result.output


# ---------------------------------------------------------------------------------------
# 6. evaluate on a dataset of other fonts is refused


def test_evaluate_with_a_dataset_of_other_fonts_is_refused(tiny_run, tmp_path):
    workdir = tiny_run.parents[2]
    assert invoke("evaluate", workdir=workdir).exit_code == 0
    metrics = tiny_run.parent / "eval" / "metrics.json"
    before = metrics.read_bytes()
    other = tmp_path / "other"
    job = default_job(other, image_size=64, val_fraction=0.5, workers=1)
    job.chars = job.chars[:20]
    fonts = [t.spec for t in job.targets]
    for target, font in zip(job.targets, fonts[1:] + fonts[:1]):  # same ids, other fonts
        target.spec = font
    render_dataset(job, progress=False, log=lambda line: None)
    result = invoke("evaluate", "--data", str(other), workdir=workdir)
    assert result.exit_code == 1 and "not rendered from the fonts the model was trained with" in result.output
    assert metrics.read_bytes() == before


# ---------------------------------------------------------------------------------------
# 7 and 8. Written files get the umask's mode; a WOFF target gives the flavour the name asks for


@pytest.fixture(scope="module")
def glyph_folder(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("glyphs") / "style-7"
    result = invoke("generate", "--style", "7", "--chars", "永国口", "--out", str(out), workdir=tiny_run.parents[2])
    assert result.exit_code == 0, result.output
    return out


def test_written_files_get_the_umask_mode(glyph_folder, tmp_path):
    old = os.umask(0o022)
    try:
        result = invoke("vectorize", str(glyph_folder), "--out", str(tmp_path / "font.ttf"), "--min-iou", "0")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    for name in ("font.ttf", "font-specimen.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_merge_into_woff_writes_the_flavour_the_name_asks_for(glyph_folder, tmp_path):
    woff = tmp_path / "kai.woff"
    font = TTFont(str(KAI))
    font.flavor = "woff"
    font.save(str(woff))
    plain = invoke("vectorize", str(glyph_folder), "--merge-into", str(woff), "--out", str(tmp_path / "merged.ttf"),
                   "--replace", "--min-iou", "0")
    assert plain.exit_code == 0, plain.output
    assert (tmp_path / "merged.ttf").read_bytes()[:4] == b"\0\1\0\0" and "WOFF" in plain.output
    web = invoke("vectorize", str(glyph_folder), "--merge-into", str(woff), "--out", str(tmp_path / "merged.woff2"),
                 "--replace", "--min-iou", "0")
    assert web.exit_code == 0, web.output
    assert (tmp_path / "merged.woff2").read_bytes()[:4] == b"wOF2"
    assert ord("永") in TTFont(str(tmp_path / "merged.woff2")).getBestCmap()


# ---------------------------------------------------------------------------------------
# 9 and 10. A read-only install and a read-only output folder: no crash, one clear message


def run_with_read_only(code: str, read_only: list[Path], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run Python code in a private mount namespace where `read_only` folders are read-only bind mounts:
    unlike file modes, that holds for root too (tests run as root in CI)."""
    mounts = " && ".join(f"mount --bind -o ro '{p}' '{p}'" for p in read_only)
    script = f"{mounts} && exec '{sys.executable}' -c \"$0\""
    return subprocess.run(["unshare", "-m", "sh", "-c", script, code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT),
                                            "OMP_NUM_THREADS": "1", **env})


def read_only_mounts_unavailable() -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare(1) on this machine"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / /"], capture_output=True)
    return None if probe.returncode == 0 else "read-only bind mounts need root (unshare -m, mount --bind)"


READ_ONLY_SKIP = read_only_mounts_unavailable()
TRACE_A_SQUARE = ("import numpy as np; from fontgen.tracing import trace_curves; "
                  "img = np.full((32, 32), 255, np.uint8); img[8:24, 8:24] = 0; print(len(trace_curves(img)))")


@pytest.mark.skipif(READ_ONLY_SKIP is not None, reason=READ_ONLY_SKIP or "")
def test_tracer_works_where_the_package_folder_is_read_only(tmp_path):
    home, scratch = tmp_path / "home", tmp_path / "scratch"
    home.mkdir()
    scratch.mkdir()
    (ROOT / "fontgen" / "__pycache__").mkdir(exist_ok=True)
    env = {"HOME": str(home), "TMPDIR": str(scratch)}
    # package and home read-only: the kernels are cached in a per-user folder under TMPDIR
    result = run_with_read_only(TRACE_A_SQUARE, [ROOT / "fontgen", home], tmp_path, env)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr
    assert list(scratch.glob("fontgen-numba-*/**/*.nbi"))
    # nowhere writable at all: compiled without a cache, still no crash
    result = run_with_read_only(TRACE_A_SQUARE, [ROOT / "fontgen", home, scratch], tmp_path, env)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stderr


@pytest.mark.skipif(READ_ONLY_SKIP is not None, reason=READ_ONLY_SKIP or "")
def test_read_only_output_is_one_message_before_tracing(glyph_folder, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    code = (f"import sys; from fontgen.cli import main; sys.argv = ['fontgen', 'vectorize', '{glyph_folder}', "
            f"'--out', '{locked / 'font.ttf'}']; main()")
    result = run_with_read_only(code, [locked], tmp_path, {"HOME": str(tmp_path)})
    assert result.returncode == 1, result.stderr
    assert "cannot write the font in" in result.stderr and "unexpected error" not in result.stderr
    assert "tracing" not in result.stderr  # refused before the work, not after it
    assert not list(locked.iterdir())


def test_damaged_datasets_are_refused_with_a_message(small_dataset, tmp_path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(small_dataset, target)
        return target

    broken = copy("missing-keys")
    manifest = json.loads((broken / "manifest.json").read_text())
    del manifest["styles"]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FontgenError, match="manifest.json is damaged"):
        load_dataset(broken)

    short = copy("short-array")
    images = np.load(short / "images.npy")
    np.save(short / "images.npy", images[:-3])
    with pytest.raises(FontgenError, match="images.npy is"):
        load_dataset(short)

    out_of_range = copy("bad-rows")
    pair_char = np.load(out_of_range / "pair_char.npy")
    pair_char[0] = 10_000
    np.save(out_of_range / "pair_char.npy", pair_char)
    with pytest.raises(FontgenError, match="pair_char.npy points outside"):
        load_dataset(out_of_range)
    result = invoke("train", "--data", str(out_of_range), "--preset", "tiny", workdir=tmp_path / "work")
    assert result.exit_code == 1 and "render it again" in result.output and "unexpected" not in result.output


def test_woff2_without_brotli_is_a_message(tmp_path, monkeypatch):
    from fontTools.ttLib import woff2

    font = TTFont(str(KAI))
    font.flavor = "woff2"
    font.save(str(tmp_path / "kai.woff2"))
    monkeypatch.setattr(woff2, "haveBrotli", False)
    result = invoke("render", "--source", str(SOURCE), "--target", str(tmp_path / "kai.woff2"), "--chars", "永",
                    "--size", "64", "--out", str(tmp_path / "data"), "--workers", "1")
    assert result.exit_code == 1 and "needs the brotli package" in result.output


# ---------------------------------------------------------------------------------------
# 11. What a kill -9 left behind is cleaned at the next start


def test_leftovers_of_killed_processes_are_cleaned(data, tmp_path):
    dead = 2 ** 22 + 12345  # above pid_max: no such process
    runs = tmp_path / "runs"
    abandoned = runs / "20260101-000000"
    (abandoned / "samples").mkdir(parents=True)
    (abandoned / "log.jsonl").write_text("{}\n")
    kept_run = runs / "20260101-000001"  # a checkpoint: resumable, kept
    kept_run.mkdir()
    (kept_run / "checkpoint.pt").write_bytes(b"x")
    user_run = runs / "mine"  # not named by fontgen: kept
    user_run.mkdir()
    (user_run / "log.jsonl").write_text("{}\n")
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    stale = [run / f".checkpoint.pt.tmp-{dead}", runs / f".latest.tmp-{dead}"]
    for path in stale:
        path.write_bytes(b"\0" * 100)
    live = run / ".samples.tmp-1"  # pid 1 lives
    live.write_bytes(b"")
    train(tiny_config(data, tmp_path, run=run, steps=1), log=None)
    assert not any(p.exists() for p in stale) and live.exists()
    assert not abandoned.exists() and kept_run.exists() and user_run.exists()

    stale_data = tmp_path / f".data.tmp-{dead}"
    (stale_data / "sub").mkdir(parents=True)
    job = default_job(tmp_path / "data", image_size=64, workers=1)
    job.chars, job.targets = job.chars[:3], job.targets[:1]
    render_dataset(job, progress=False, log=lambda line: None)
    assert not stale_data.exists()


# ---------------------------------------------------------------------------------------
# 12. generate says which font lacks the characters


def test_generate_blames_the_source_when_the_source_lacks_them(tiny_run):
    result = invoke("generate", "--style", "7", "--chars", "ＡＢ", workdir=tiny_run.parents[2])
    assert result.exit_code == 1 and "the source font" in result.output and "has none of the" in result.output
    result = invoke("generate", "--style", "7", "--chars", "永", "--target-font", str(KAI),
                    workdir=tiny_run.parents[2])
    assert result.exit_code == 1 and "target font" in result.output and "already has all" in result.output
