"""Join strokes the generator broke, guided by the source glyph's structure.

At 64 px a GAN draws thin strokes (the horizontals of Song and Kai styles above all) with
gaps where the ink fades below mid-grey: traced at the 50% level, one stroke becomes two or
three pieces. The generator usually leaves faint ink across such a gap; a real gap between
two strokes is paper. `join_broken_strokes` bridges gaps only

- through pixels the generator inked at least faintly (darker than `faint`), never across
  paper, so it cannot draw a stroke the generator did not start;
- along the cheapest (darkest, shortest) 4-connected path between two pieces, at most
  `max_gap` pixels of it outside the ink, one path per join (a bridge as wide as a hairline,
  nothing else thickens);
- while the glyph has more pieces than the source glyph (its content: the same character,
  counted at display size, where strokes that nearly touch are still apart), cheapest
  join first, so the count never goes below the source's.

Specks (pieces under `min_pixels`) are neither counted nor joined; the tracer drops them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

EIGHT = np.ones((3, 3), dtype=bool)
FAINT = 224  # pixels darker than this (ink above ~12%) may carry a bridge
MAX_GAP = 3  # pixels of bridge outside the ink at 64 px (3/64 em; scaled with the image size)
BRIDGE = 32  # grey value written on bridge pixels (ink ~87%)
MIN_PIXELS = 3  # pieces smaller than this at 64 px are specks (the tracer's min_speck_area is 3 px^2)


def pieces(image: np.ndarray, min_pixels: int = MIN_PIXELS) -> tuple[np.ndarray, int]:
    """Labels (0 = paper or speck) and count of the 8-connected pieces of ink darker than mid-grey."""
    labels, count = ndimage.label(np.asarray(image) < 128, structure=EIGHT)
    if count == 0:
        return labels, 0
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_pixels
    keep[0] = False
    remap = np.zeros(count + 1, dtype=np.int64)
    remap[keep] = np.arange(1, int(keep.sum()) + 1)
    return remap[labels], int(keep.sum())


def _grid_graph(image: np.ndarray, faint: int) -> csr_matrix:
    """4-neighbour graph over the pixels darker than `faint`; entering a pixel costs its paleness."""
    h, w = image.shape
    idx = np.arange(h * w).reshape(h, w)
    passable = (image < faint).ravel()
    cost = image.astype(np.float64).ravel() / 255.0 + 0.05
    rows, cols = [], []
    for a, b in ((idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])):
        a, b = a.ravel(), b.ravel()
        ok = passable[a] & passable[b]
        rows += [a[ok], b[ok]]
        cols += [b[ok], a[ok]]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return csr_matrix((cost[cols], (rows, cols)), shape=(h * w, h * w))


def join_broken_strokes(generated: np.ndarray, want: int, max_gap: int | None = None, faint: int = FAINT,
                        min_pixels: int | None = None) -> tuple[np.ndarray, int]:
    """Bridge gaps in `generated` (uint8, 0 = ink) while it has more than `want` pieces.

    max_gap, min_pixels: default MAX_GAP, MIN_PIXELS at 64 px, scaled to the image size.
    Returns (image, joins made). The input is not modified. See the module docstring.
    """
    image = np.array(generated, dtype=np.uint8)
    if image.ndim != 2:
        raise ValueError(f"expected one grey glyph image, got shape {image.shape}")
    h, w = image.shape
    scale = w / 64
    max_gap = max(1, round(MAX_GAP * scale)) if max_gap is None else int(max_gap)
    min_pixels = max(1, round(MIN_PIXELS * scale * scale)) if min_pixels is None else int(min_pixels)
    graph = None
    joins = 0
    while True:
        labels, count = pieces(image, min_pixels)
        if count <= max(int(want), 1):
            return image, joins
        if graph is None:
            graph = _grid_graph(image, faint)
        lab = labels.ravel()
        starts = np.flatnonzero(lab > 0)
        # every piece at once: distance from the nearest piece, which piece, and the way back
        dist, pred, origin = dijkstra(graph, indices=starts, min_only=True, return_predecessors=True)
        owner = np.where(origin >= 0, lab[np.maximum(origin, 0)], 0)
        idx = np.arange(h * w).reshape(h, w)
        best = None
        for a, b in ((idx[:, :-1], idx[:, 1:]), (idx[:-1, :], idx[1:, :])):
            a, b = a.ravel(), b.ravel()
            meet = (owner[a] > 0) & (owner[b] > 0) & (owner[a] != owner[b])
            meet &= np.isfinite(dist[a]) & np.isfinite(dist[b])
            if not meet.any():
                continue
            total = dist[a][meet] + dist[b][meet]
            k = int(np.argmin(total))
            if best is None or total[k] < best[0]:
                best = (total[k], int(a[meet][k]), int(b[meet][k]))
        if best is None:
            return image, joins  # no two pieces are linked by faint ink
        path = []
        for node in best[1:]:
            while node >= 0 and lab[node] == 0:
                path.append(node)
                node = pred[node]
        if not path or len(path) > max_gap:
            return image, joins  # the cheapest remaining gap is too wide to be a break
        flat = image.ravel()
        flat[path] = np.minimum(flat[path], BRIDGE)
        image = flat.reshape(h, w)
        joins += 1


def join_all(generated: np.ndarray, wants: np.ndarray, **options) -> tuple[np.ndarray, int]:
    """`join_broken_strokes` over a stack [N, H, W] with one piece count each; (images, glyphs changed)."""
    out = np.array(generated, dtype=np.uint8)
    changed = 0
    for i, want in enumerate(wants):
        out[i], joins = join_broken_strokes(out[i], int(want), **options)
        changed += joins > 0
    return out, changed
