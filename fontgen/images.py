"""Glyph pixels <-> model tensors, one definition for train, generate and evaluate.

Stored glyphs are uint8 (0 = ink, 255 = paper); the networks see [-1, 1] floats, one
channel, at the model's image size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from fontgen.errors import FontgenError


def to_model(images, image_size: int, device) -> torch.Tensor:
    """uint8 [B, S, S] (numpy or tensor) -> float [B, 1, image_size, image_size] in [-1, 1] on `device`.

    The uint8 batch travels to the device as is (a quarter of the bytes of float32) and is
    converted there. Resampling is symmetric about pixel centres, so pixel edges, and with
    them the em-box transform, simply scale.
    """
    if not isinstance(images, torch.Tensor):
        images = torch.from_numpy(np.array(images, dtype=np.uint8))  # a copy: memmaps are read-only
    batch = images.to(device, non_blocking=True).unsqueeze(1).float().div_(127.5).sub_(1.0)
    if batch.shape[-1] != image_size:
        batch = resize(batch, image_size)
    return batch


def resize(batch: torch.Tensor, image_size: int) -> torch.Tensor:
    """The one resampling of glyph batches (training, generation, evaluation alike)."""
    return F.interpolate(batch, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)


def from_model(batch: torch.Tensor) -> np.ndarray:
    """float [B, 1, s, s] in [-1, 1] -> uint8 [B, s, s]."""
    return ((batch.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).cpu().numpy()


# The ink level at which the model's drawings weigh what the font's own glyphs weigh: traced at 50%
# they come out ~2% light (their edges are soft), at 47.5% within 1% (docs/benchmarks.md, round 11).
DRAWING_INK_LEVEL = 0.475


def calibrate_ink(images: np.ndarray, level: float = DRAWING_INK_LEVEL) -> np.ndarray:
    """uint8 drawings (0 = ink) with their ink curved (ink ** gamma) so that `level` becomes 50%:
    the 50% outline that vectorize traces then weighs what the font's own glyphs weigh. Paper and
    full ink stay; only the soft edges darken a little."""
    gamma = np.log(0.5) / np.log(level)
    ink = np.linspace(1.0, 0.0, 256) ** gamma  # grey value -> calibrated ink
    table = np.round(255 * (1 - ink)).astype(np.uint8)
    return table[np.asarray(images, dtype=np.uint8)]


def ink_components(image: np.ndarray, min_pixels: int = 3) -> int:
    """Connected pieces of ink (8-connected, darker than mid-grey), ignoring specks."""
    labels, count = ndimage.label(np.asarray(image) < 128, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return 0
    sizes = np.bincount(labels.ravel())[1:]
    return int((sizes >= min_pixels).sum())


SHEET_PAGE = 240  # glyphs per contact-sheet page


def paged_sheets(path, count: int, make_page, page: int = SHEET_PAGE) -> list:
    """Write every glyph, `page` per image: PATH, then PATH-2.png, ... `make_page(start, stop, title)`
    returns a PIL image of glyphs start..stop. Pages of an earlier, longer run are removed."""
    from pathlib import Path

    from fontgen.files import temp_path

    path = Path(path)
    pages = max(1, -(-count // page))
    written = []
    for k in range(pages):
        start, stop = k * page, min(count, (k + 1) * page)
        title = f"{stop - start} of {count} glyphs ({start + 1}-{stop}), page {k + 1} of {pages}" if pages > 1 else \
            f"{count} glyphs"
        target = path if k == 0 else path.with_name(f"{path.stem}-{k + 1}{path.suffix}")
        tmp = temp_path(target, suffix=True)
        make_page(start, stop, title).save(tmp)
        tmp.replace(target)
        written.append(target)
    k = pages + 1
    while (stale := path.with_name(f"{path.stem}-{k}{path.suffix}")).exists():
        stale.unlink()
        k += 1
    return written


def glyph_sheet(tiles: list[list[np.ndarray]], captions: list[str], cell: int = 64, columns: int = 12,
                stack: str = "horizontal", emphasised: list[bool] | None = None, title: str | None = None):
    """A contact sheet: tiles of one or more glyph images (side by side or stacked), each
    framed and captioned; emphasised tiles get a black frame; an optional title line on top.
    Returns a PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    label_h, pad = 12, 4
    top = 16 if title else 0
    across = max((len(t) for t in tiles), default=1)
    tile_w, tile_h = (across * cell, cell) if stack == "horizontal" else (cell, across * cell)
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("L", (columns * (tile_w + pad) + pad, top + rows * (tile_h + label_h + pad) + pad), 255)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((pad, 2), title, fill=0, font=font)
    for i, (tile, caption) in enumerate(zip(tiles, captions)):
        x = pad + (i % columns) * (tile_w + pad)
        y = top + pad + (i // columns) * (tile_h + label_h + pad)
        for j, pixels in enumerate(tile):
            image = Image.fromarray(np.asarray(pixels))
            if image.size != (cell, cell):
                image = image.resize((cell, cell), Image.Resampling.BOX)
            sheet.paste(image, (x + j * cell, y) if stack == "horizontal" else (x, y + j * cell))
        strong = bool(emphasised and emphasised[i])
        draw.rectangle([x, y, x + tile_w - 1, y + tile_h - 1], outline=0 if strong else 200)
        draw.text((x + 1, y + tile_h), caption, fill=0, font=font)
    return sheet


def load_glyph_image(path: Path, size: int) -> np.ndarray:
    """Read one glyph PNG as uint8 grey (0 = ink); FontgenError naming the file if unusable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise FontgenError(f"{path}: not a PNG image (it is {im.format})")
            if im.size != (size, size):
                raise FontgenError(f"{path}: image is {im.size[0]}x{im.size[1]} px, expected {size}x{size}")
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                white = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(white, im)
            if im.mode == "I;16" or im.mode == "I":
                arr = np.asarray(im, dtype=np.float64)
                arr = np.clip(arr / (65535.0 if arr.max() > 255 else 255.0) * 255, 0, 255).astype(np.uint8)
            else:
                arr = np.asarray(im.convert("L"), dtype=np.uint8)
    except FontgenError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FontgenError(f"{path}: not a readable PNG image ({exc.__class__.__name__}: {exc})") from None
    if not (arr < 128).any():
        raise FontgenError(f"{path}: blank image (no pixel is at least 50% ink)")
    return arr
