"""Redraw generated glyphs from the target font's own glyphs.

The generator puts most strokes within a pixel or two of their place but draws them soft, and it
cannot know how this font draws a component in a character it has never seen. The font often
does: CJK fonts build thousands of characters from a few hundred components, and the glyphs the
font has show each one as its designer drew it. So every window of a drawing (a quarter of the
glyph square, or five sixteenths where the font lends thousands of glyphs: `window_for`; one every
sixteenth) is matched against the same window of the font's own glyphs,
each allowed to come from up to REACH away: the NEIGHBOURS whose drawing and source glyphs look
most alike there (all compared at MATCH_SIZE px) are averaged, nearer ones weighing more, the
windows are overlap-averaged into a whole glyph, each pixel taken mostly from the windows it lies
in the middle of, and that is blended with the drawing (BLEND).

A component the font has comes out as the font draws it; where no glyph has anything alike, the
nearest windows still follow the drawing's strokes and the blend keeps the drawing at half its
weight, so a stroke the drawing has is never dropped for one it lacks. Matching on the source
glyphs as well as the drawing finds the same component more often than the drawing alone, and on
every source font the model learnt from more often than on the primary alone: each draws the
character's structure a little differently, and a window alike in all of them is the same
component. docs/benchmarks.md, rounds 8 to 10: IPAmincho's 247 held-out drawings, IoU 0.669 -> 0.700.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from fontgen.fonts import FontSpec, Geometry, GlyphRenderer, coverage_of, open_font, render_views

MATCH_SIZE = 32  # px: drawings and exemplars are compared area-downsampled to this size
# px at MATCH_SIZE, even (windows every STRIDE px then end at the glyph's edge): a quarter of the
# glyph square; from LARGE_BANK lent glyphs on, whole components match often enough that a larger
# window pays (docs/benchmarks.md round 10, IPAmincho: 560 lent, 8 beats 10 by 0.003 IoU; 1,500
# even; 2,321 and 9,890, 10 beats 8 by 0.001 and 0.003; 12 breaks more strokes for 0.001 more)
SMALL_WINDOW, LARGE_WINDOW = 8, 10
LARGE_BANK = 2_000
STRIDE = 2  # px at MATCH_SIZE between windows
REACH = 1  # px at MATCH_SIZE an exemplar window may come from away from the window's place (4 px at 128)
NEIGHBOURS = 4
SOURCE_WEIGHT = 2.0  # the primary source font's glyph's part of the match, against the drawing's
OTHER_SOURCE_WEIGHT = 1.0  # each further source font's (as in the drawing's mean, the primary counts twice)
BLEND = 0.5  # share of the redrawn glyph in the result; the rest is the drawing
MAX_EXEMPLARS = 10_000  # a larger font lends its first ones (unified ideographs first, by codepoint)
QUERY_BATCH = 512  # glyphs matched at once (memory: QUERY_BATCH x exemplars scores)
# glyphs x exemplars below which the redraw runs on one thread: its ~10,000 small operations gain
# nothing from a second one and lose much beside a busy process (12 x 560 at 64 px beside one: 1.2 s
# on one thread, 3.2 s on two)
ONE_THREAD_WORK = 1_000_000


@dataclass
class Exemplars:
    """The target font's own glyphs at the model's size and their source glyphs, ready to match."""

    ink: torch.Tensor  # [N, S, S] uint8, 0 paper .. 255 ink (a quarter of float32's memory)
    features: torch.Tensor  # [N, 1 + V, MATCH_SIZE, MATCH_SIZE]: the glyph's ink, then each source's, weighted
    codepoints: torch.Tensor  # [N] int64

    @classmethod
    def from_images(cls, own: np.ndarray, sources: np.ndarray, codepoints) -> Exemplars:
        """own: uint8 [N, S, S] (black ink on white), the font's glyphs; sources: uint8 [V, N, *, *],
        the same characters in each of the V source fonts, the primary first ([N, *, *]: one source);
        codepoints: N ints."""
        sources = _views(sources)
        features = torch.cat([_features(_ink(own[i:i + 1024]), sources[:, i:i + 1024])
                              for i in range(0, len(own), 1024)]) if len(own) else \
            torch.zeros(0, 1 + len(sources), MATCH_SIZE, MATCH_SIZE)
        return cls(255 - torch.from_numpy(np.ascontiguousarray(own)), features,
                   torch.as_tensor(np.asarray(codepoints, dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.codepoints)

    @property
    def views(self) -> int:
        """How many source fonts the glyphs are matched on."""
        return self.features.shape[1] - 1


def font_exemplars(target: FontSpec, target_geometry: Geometry, sources: list[tuple[FontSpec, Geometry]],
                   exclude=(), progress: bool = False) -> Exemplars:
    """The target's own ideographs that the primary source font (sources[0]) also draws, minus
    `exclude` (characters being drawn that the font must not lend, e.g. evaluate's held-out ones),
    rendered at target_geometry's size: the target's glyph and each source's (the primary's where
    another source lacks the character, as render stores them)."""
    from fontgen.charsets import is_ideograph

    skip = set(exclude)
    cmap = open_font(target).getBestCmap()
    chars = sorted((chr(cp) for cp in cmap if chr(cp) not in skip and is_ideograph(chr(cp))),
                   key=lambda ch: (not 0x4E00 <= ord(ch) <= 0x9FFF, ord(ch)))
    chars = coverage_of(target, chars).present
    chars = coverage_of(sources[0][0], chars).present[:MAX_EXEMPLARS]
    size = target_geometry.image_size
    own = GlyphRenderer(target, target_geometry)
    views = render_views([GlyphRenderer(spec, geometry.resized(size)) for spec, geometry in sources], chars,
                         progress, desc="exemplars")
    images = np.stack([own.render(ch) for ch in chars]) if chars else np.empty((0, size, size), dtype=np.uint8)
    return Exemplars.from_images(images, views, [ord(ch) for ch in chars])


def window_for(lent: int) -> int:
    """The window (px at MATCH_SIZE) to match in a bank of `lent` glyphs."""
    return LARGE_WINDOW if lent >= LARGE_BANK else SMALL_WINDOW


def _ink(images: np.ndarray) -> torch.Tensor:
    return (255 - torch.from_numpy(np.ascontiguousarray(images)).float()) / 255


def _views(sources: np.ndarray) -> np.ndarray:
    return sources[None] if sources.ndim == 3 else sources


def _features(ink: torch.Tensor, sources: np.ndarray) -> torch.Tensor:
    """[N, 1 + V, MATCH_SIZE, MATCH_SIZE] from ink [N, S, S] and uint8 sources [V, N, *, *]."""
    small = lambda x: F.interpolate(x[:, None], size=(MATCH_SIZE, MATCH_SIZE), mode="area")[:, 0]  # noqa: E731
    weights = [SOURCE_WEIGHT] + [OTHER_SOURCE_WEIGHT] * (len(sources) - 1)
    return torch.stack([small(ink)] + [w * small(_ink(view)) for w, view in zip(weights, sources)], dim=1)


def redraw(drawings: np.ndarray, sources: np.ndarray, codepoints, exemplars: Exemplars,
           bf16: bool | None = None, progress: bool = False) -> np.ndarray:
    """The drawings blended with their redrawing from the exemplars (the module docstring).

    drawings: uint8 [Q, S, S] at the exemplars' size; sources: uint8 [V, Q, *, *], each drawing's
    glyph in the exemplars' V source fonts, the primary first ([Q, *, *]: one source; any size: they
    are only matched at MATCH_SIZE); codepoints: Q ints, each
    glyph's character, whose own exemplar (if the font has it) is never used. bf16: rank the
    candidates in bf16 (the winners' distances are fp32 again); None: where the CPU computes bf16 in
    hardware (1.4x faster there, docs/benchmarks.md round 8). Returns uint8 [Q, S, S].
    """
    if bf16 is None:
        from fontgen.model import cpu_has_native_bf16

        bf16 = cpu_has_native_bf16()
    if len(exemplars) <= NEIGHBOURS or len(drawings) == 0:  # too few to choose from (one may be the glyph's own)
        return drawings.copy()
    size = drawings.shape[-1]
    if exemplars.ink.shape[-1] != size:
        raise ValueError(f"exemplars are {exemplars.ink.shape[-1]} px, the drawings {size} px")
    sources = _views(sources)
    if len(sources) != exemplars.views:
        raise ValueError(f"the exemplars are matched on {exemplars.views} source font(s), the drawings come with "
                         f"{len(sources)}")
    ink = _ink(drawings)
    features = _features(ink, sources)
    own = torch.as_tensor(np.asarray(codepoints, dtype=np.int64))
    dtype = torch.bfloat16 if bf16 else torch.float32
    threads = torch.get_num_threads()
    if len(ink) * len(exemplars) < ONE_THREAD_WORK:
        torch.set_num_threads(1)
    try:
        redrawn = _redraw_all(ink, features, own, exemplars, dtype, progress)
    finally:
        torch.set_num_threads(threads)
    mixed = (1 - BLEND) * ink + BLEND * redrawn
    return (255 - torch.round(255 * mixed)).clamp(0, 255).to(torch.uint8).numpy()


def _redraw_all(ink, features, own, exemplars: Exemplars, dtype: torch.dtype, progress: bool) -> torch.Tensor:
    with tqdm(total=len(ink), unit="glyph", desc="redraw", disable=not progress, dynamic_ncols=True) as bar:
        return torch.cat([_redraw_batch(ink[i:i + QUERY_BATCH], features[i:i + QUERY_BATCH],
                                        own[i:i + QUERY_BATCH], exemplars, dtype, bar)
                          for i in range(0, len(ink), QUERY_BATCH)])


def _redraw_batch(ink: torch.Tensor, features: torch.Tensor, own: torch.Tensor, exemplars: Exemplars,
                  dtype: torch.dtype, bar: tqdm) -> torch.Tensor:
    count, size = len(ink), ink.shape[-1]
    scale = size / MATCH_SIZE
    bank, n = exemplars.features, len(exemplars)
    w = window_for(n)  # px at MATCH_SIZE
    window = round(w * scale)  # px at full size
    last = MATCH_SIZE - w
    positions = [(y, x) for y in range(0, last + 1, STRIDE) for x in range(0, last + 1, STRIDE)]
    # the nearest so far at each position: score = query . exemplar - |exemplar|^2 / 2 (larger is nearer)
    best_score = torch.full((len(positions), count, NEIGHBOURS), -float("inf"), dtype=dtype)
    best_glyph = torch.zeros((len(positions), count, NEIGHBOURS), dtype=torch.long)
    best_place = torch.zeros((len(positions), count, NEIGHBOURS, 2), dtype=torch.long)
    queries = torch.stack([features[:, :, y:y + w, x:x + w].reshape(count, -1) for y, x in positions])
    half_norms = 0.5 * F.avg_pool2d((bank * bank).sum(1, keepdim=True), w, stride=1)[:, 0] * w * w
    # score = [query, -1] . [exemplar, |exemplar|^2 / 2]: one matrix product, no bias to broadcast
    low_queries = torch.cat([queries, -torch.ones(len(positions), count, 1)], dim=2).to(dtype)
    low_bank = bank.to(dtype)
    # a glyph never copies its own character
    match = own[:, None] == exemplars.codepoints[None]
    own_rows, own_index = match.nonzero(as_tuple=True)
    index_of = {pos: i for i, pos in enumerate(positions)}
    for py in range(last + 1):  # every exemplar window once, against each position that reaches it
        bar.update((py + 1) * count // (last + 1) - py * count // (last + 1))
        for px in range(last + 1):
            users = [index_of[(py - dy, px - dx)] for dy in range(-REACH, REACH + 1) for dx in range(-REACH, REACH + 1)
                     if (py - dy, px - dx) in index_of]
            if not users:
                continue
            candidates = torch.cat([low_bank[:, :, py:py + w, px:px + w].reshape(n, -1),
                                    half_norms[:, py, px, None].to(dtype)], dim=1).T.contiguous()
            for user in users:
                score = low_queries[user] @ candidates
                score[own_rows, own_index] = -float("inf")
                top, glyph = torch.topk(score, NEIGHBOURS, dim=1)
                merged = torch.cat([best_score[user], top], dim=1)
                keep = torch.topk(merged, NEIGHBOURS, dim=1).indices
                best_score[user] = torch.gather(merged, 1, keep)
                best_glyph[user] = torch.gather(torch.cat([best_glyph[user], glyph], dim=1), 1, keep)
                place = torch.tensor([py, px]).expand(count, NEIGHBOURS, 2)
                best_place[user] = torch.gather(torch.cat([best_place[user], place], dim=1), 1,
                                                keep[..., None].expand(-1, -1, 2))
    total = torch.zeros_like(ink)
    cover = torch.zeros(size, size)
    # a window's match speaks for its middle more than for its rim, which the next windows match
    # better (a flat average blurs every stroke by the windows' spread: docs/benchmarks.md round 10)
    ramp = torch.hann_window(window + 2, periodic=False)[1:-1]
    taper = torch.outer(ramp, ramp)
    # every window of every exemplar as a strided view (no copy): [N, y, x, ...window]
    patches_at = exemplars.ink.unfold(1, window, 1).unfold(2, window, 1)
    features_at = bank.unfold(2, w, 1).unfold(3, w, 1).permute(0, 2, 3, 1, 4, 5)
    for i, (y, x) in enumerate(positions):
        glyph, place = best_glyph[i], best_place[i]
        # the winners' squared distances in fp32; nearer neighbours weigh more, on the nearest's scale
        chosen = features_at[glyph, place[..., 0], place[..., 1]].reshape(count, NEIGHBOURS, -1)
        distance = ((chosen - queries[i][:, None]) ** 2).sum(-1)
        nearest = distance.min(1, keepdim=True).values
        weight = torch.softmax(-(distance - nearest) / (0.5 * nearest + 1e-3), dim=1)
        patches = patches_at[glyph, torch.round(place[..., 0] * scale).long(),
                             torch.round(place[..., 1] * scale).long()].float() / 255
        oy, ox = round(y * scale), round(x * scale)
        total[:, oy:oy + window, ox:ox + window] += taper * (weight[..., None, None] * patches).sum(1)
        cover[oy:oy + window, ox:ox + window] += taper
    return total / cover.clamp_min(1e-6)  # 0 where no window reaches (none at the sizes the model draws)
