"""Cubic Bézier outlines fitted directly to the traced glyph outline (for CFF / OpenType-PS and UFO).

The TrueType path of `fontgen.vectorize` fits quadratic B-splines; PostScript outlines
(CFF charstrings) are cubic. Raising quadratics to cubics would carry the quadratic
approximation into a format that does not need it, so this module fits cubics to the
same traced points instead:

1. The same front end as the quadratic tracer: marching squares on the anti-aliased
   image (`tracing._nb_iso_contours`), the same corners (`_nb_find_corners`, turn over
   an arc-length window), sharpened to the intersection of their edges
   (`_nb_sharpen_corners`), and the points within `_CORNER_SKIP` px of a sharpened corner
   left out of the fit (the image rounds every corner off there).
2. Each run between two corners is a line if every point lies within `fit_error` of the
   chord, else one cubic Bézier fitted by Schneider's algorithm ("An Algorithm for
   Automatically Fitting Digitized Curves", Graphics Gems, 1990): chord-length
   parameters, linear least squares for the two inner control points, Newton-Raphson
   reparametrisation of every sample onto the curve. When the error stays above the bound,
   the run is split: the longest first part one cubic fits is found by bisection, and the
   rest continues from its end with the same tangent (a smooth, G1 join; Schneider splits
   at the worst point instead, which costs more segments on long brush strokes). End
   tangents at a sharp corner are free (the least squares chooses them).
3. A closed contour without corners is split at its top and bottom points (on-curve
   points at vertical extrema with horizontal tangents, as type designers draw them).

Error bound: every traced outline point (the sub-pixel 0.5 iso-level crossings) that the
fit uses lies within `fit_error` px (TraceOptions, default 0.3 px) of the fitted curve:
the distance is measured to the curve point at the sample's Newton-refined parameter,
which is never less than the true distance to the curve. Points within 1 px of arc next
to a sharpened corner are not fitted (as in the quadratic tracer). Writing a font rounds
coordinates to whole font units, which adds at most 0.71 unit (0.18 px at 256 px / 1000
UPM). `fit_stats` reports the measured worst error.

Contours come back as (x, y, on_curve) points like the quadratic ones, but off-curve
points always come in pairs: on, off, off, on is one cubic segment. In font units the
outer contours run counter-clockwise and holes clockwise (the PostScript convention,
the reverse of TrueType's).
"""

from __future__ import annotations

import math

import numpy as np

from fontgen.fonts import Geometry

_NEWTON_ERROR = 8.0  # fits within this many times fit_error are reparametrised (else: split)
_NEWTON_ITERS = 24  # at most; stops when an iteration gains less than 10 %
_TANGENT_ARC = 1.5  # px of arc on each side used for the centred tangent at a split
_stats = {"worst": 0.0, "segments": 0}


def fit_stats(reset: bool = False) -> dict:
    """The worst distance (px) of a fitted point from its cubic seen so far in this process."""
    out = dict(_stats)
    if reset:
        _stats.update(worst=0.0, segments=0)
    return out


def _bezier(c: np.ndarray, u: np.ndarray) -> np.ndarray:
    u = u[:, None]
    v = 1.0 - u
    return v ** 3 * c[0] + 3 * v * v * u * c[1] + 3 * v * u * u * c[2] + u ** 3 * c[3]


def _newton(c: np.ndarray, d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One Newton-Raphson step moving each parameter to the curve point nearest its sample."""
    q = _bezier(c, u) - d
    d1 = 3 * np.stack([c[1] - c[0], c[2] - c[1], c[3] - c[2]])
    d2 = 2 * np.stack([d1[1] - d1[0], d1[2] - d1[1]])
    uu = u[:, None]
    v = 1.0 - uu
    q1 = v * v * d1[0] + 2 * v * uu * d1[1] + uu * uu * d1[2]
    q2 = v * d2[0] + uu * d2[1]
    num = (q * q1).sum(1)
    den = (q1 * q1).sum(1) + (q * q2).sum(1)
    step = np.divide(num, den, out=np.zeros_like(num), where=np.abs(den) > 1e-12)
    return np.clip(u - step, 0.0, 1.0)


def _chord_params(d: np.ndarray) -> np.ndarray:
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(d, axis=0).T))])
    return s / s[-1] if s[-1] > 0 else np.linspace(0, 1, len(d))


def _least_squares(d: np.ndarray, u: np.ndarray, t0, t1) -> np.ndarray | None:
    """Control points P0, P1, P2, P3 with P0 = d[0], P3 = d[-1]; P1 = P0 + a t0 when t0 is
    given (else free), P2 = P3 + b t1 likewise."""
    p0, p3 = d[0], d[-1]
    v = 1.0 - u
    b0, b1, b2, b3 = v ** 3, 3 * v * v * u, 3 * v * u * u, u ** 3
    r = d - np.outer(b0 + b1, p0) - np.outer(b2 + b3, p3)  # what P1, P2 (relative to P0, P3) must explain
    m = len(d)
    cols = []
    for basis, t in ((b1, t0), (b2, t1)):
        if t is None:
            cols.append(np.concatenate([basis, np.zeros(m)]))
            cols.append(np.concatenate([np.zeros(m), basis]))
        else:
            cols.append(np.concatenate([basis * t[0], basis * t[1]]))
    A = np.stack(cols, axis=1)
    rhs = np.concatenate([r[:, 0], r[:, 1]])
    ata = A.T @ A
    if abs(np.linalg.det(ata)) < 1e-9:
        return None
    x = np.linalg.solve(ata, A.T @ rhs)
    chord = float(np.hypot(*(p3 - p0)))
    k = 0
    out = []
    for base, t in ((p0, t0), (p3, t1)):
        if t is None:
            h = np.array([x[k], x[k + 1]])
            k += 2
        else:
            a = x[k]
            k += 1
            if not a > 1e-3 * max(chord, 1e-6):  # a handle pointing backwards: Schneider's fallback
                a = chord / 3
            h = a * np.asarray(t)
        out.append(base + h)
    c = np.stack([p0, out[0], out[1], p3])
    # handles much longer than the run make loops between the samples: not a fit
    if np.hypot(*(c[1] - c[0])) > 1.5 * chord + 1 or np.hypot(*(c[2] - c[3])) > 1.5 * chord + 1:
        return None
    return c


def _tangent_at(d: np.ndarray, i: int) -> np.ndarray:
    """Unit tangent (direction of travel) of the run `d` at sample i, over +-_TANGENT_ARC px."""
    s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(d, axis=0).T))])
    lo = int(np.searchsorted(s, s[i] - _TANGENT_ARC, side="left"))
    hi = int(np.searchsorted(s, s[i] + _TANGENT_ARC, side="right")) - 1
    lo, hi = min(lo, i - 1), max(hi, i + 1)
    t = d[min(hi, len(d) - 1)] - d[max(lo, 0)]
    n = math.hypot(*t)
    return t / n if n > 0 else np.array([1.0, 0.0])


def _fit_one(d: np.ndarray, tol: float, t0, t1):
    """(control points, max error, index of the worst sample) of one cubic, or None."""
    u = _chord_params(d)
    c = _least_squares(d, u, t0, t1)
    if c is None:
        return None
    err = np.hypot(*(_bezier(c, u) - d).T)
    if err.max() <= tol or err.max() > _NEWTON_ERROR * tol:
        return c, float(err.max()), int(err.argmax())
    best = (c, float(err.max()), int(err.argmax()))
    for _ in range(_NEWTON_ITERS):
        u = _newton(c, d, u)
        c2 = _least_squares(d, u, t0, t1)
        if c2 is None:
            break
        c = c2
        err = np.hypot(*(_bezier(c, u) - d).T)
        gain = err.max() < 0.9 * best[1]
        if err.max() < best[1]:
            best = (c, float(err.max()), int(err.argmax()))
        if err.max() <= tol or not gain:
            break
    return best


def _is_line(d: np.ndarray, tol: float) -> bool:
    c = d[-1] - d[0]
    L = math.hypot(*c)
    if L < 1e-9:
        return False
    rel = d - d[0]
    dist = np.abs(rel[:, 0] * c[1] - rel[:, 1] * c[0]) / L
    along = (rel @ c) / L
    return bool(dist.max() <= tol and along.min() > -tol and along.max() < L + tol)


def _try_piece(d: np.ndarray, tol: float, t0, t1) -> np.ndarray | None:
    """A line or one cubic that fits `d` within tol (with the given end tangents), else None."""
    if len(d) <= 2 or _is_line(d, tol):
        return np.stack([d[0], d[-1]])
    fit = _fit_one(d, tol, t0, None if t1 is None else -np.asarray(t1))
    if fit is None or fit[1] > tol:
        return None
    _stats["worst"] = max(_stats["worst"], fit[1])
    _stats["segments"] += 1
    return fit[0]


def _end_tangent(seg: np.ndarray):
    t = seg[-1] - seg[-2]
    n = math.hypot(*t)
    return t / n if n > 1e-9 else None


def fit_run(d: np.ndarray, tol: float, t0=None, t1=None) -> list[np.ndarray]:
    """Segments fitting an open run of points: lines (2 points) and cubics (4 points), in order.

    `t0`/`t1`: unit tangents the curve must follow at the start / end (direction of
    travel), or None for a free end (a corner). When one cubic cannot fit the whole run,
    the longest first part that one cubic fits is found by bisection and the rest
    continues from its end with the same tangent (a smooth, G1 join); where even a short
    part cannot continue smoothly, the join becomes a corner.
    """
    d = np.asarray(d, dtype=np.float64)
    segments: list[np.ndarray] = []
    start = 0
    m = len(d)
    while start < m - 1:
        rest = d[start:]
        whole = _try_piece(rest, tol, t0, t1)
        if whole is not None:
            segments.append(whole)
            break
        lo, hi, best = 2, len(rest) - 2, None
        while lo <= hi:
            mid = (lo + hi) // 2
            piece = _try_piece(rest[:mid + 1], tol, t0, None)
            if piece is not None:
                best, lo = (mid, piece), mid + 1
            else:
                hi = mid - 1
        if best is None:
            if t0 is not None:
                t0 = None  # a soft corner: continue without the tangent
                continue
            best = (1, np.stack([rest[0], rest[1]]))
        segments.append(best[1])
        start += best[0]
        t0 = _end_tangent(best[1]) if len(best[1]) == 4 else None
    return segments


def fit_contour_cubic(p: np.ndarray, opts) -> list[np.ndarray]:
    """Segments of one closed traced contour (pixels): lines and cubics, in order, closed."""
    from fontgen import tracing as V

    p = V._nb_dedupe(np.ascontiguousarray(p, dtype=np.float64))
    n = len(p)
    seglen = np.hypot(*(np.roll(p, -1, axis=0) - p).T)
    s = np.concatenate([[0.0], np.cumsum(seglen)[:-1]])
    total = float(seglen.sum())
    corners = V._nb_find_corners(p, s, total, float(opts.corner_angle), float(opts.corner_window))
    tol = float(opts.fit_error)
    segments: list[np.ndarray] = []
    if len(corners) > 0:
        p = V._nb_sharpen_corners(p, s, total, corners, 4.0)
        k = len(corners)
        for ci in range(k):
            a, b = int(corners[ci]), int(corners[(ci + 1) % k])
            cnt = b - a + 1 if b > a else n - a + b + 1
            run = p[(a + np.arange(cnt)) % n]
            if V._CORNER_SKIP > 0 and cnt > 4:
                rs = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(run, axis=0).T))])
                keep = (rs >= V._CORNER_SKIP) & (rs <= rs[-1] - V._CORNER_SKIP)
                keep[0] = keep[-1] = True
                if 3 <= keep.sum() < cnt:
                    run = run[keep]
            segments += fit_run(run, tol)
        return segments
    # a smooth closed curve: on-curve points at its top and bottom, horizontal tangents there
    if n < 6:
        return [np.stack([p[i], p[(i + 1) % n]]) for i in range(n)]
    top, bottom = int(p[:, 1].argmin()), int(p[:, 1].argmax())
    first = np.concatenate([p, p])[top:top + ((bottom - top) % n) + 1]
    second = np.concatenate([p, p])[bottom:bottom + ((top - bottom) % n) + 1]
    for run in (first, second):
        if len(run) < 2:
            continue
        t0 = np.array([np.sign(run[min(2, len(run) - 1), 0] - run[0, 0]) or 1.0, 0.0])
        t1 = np.array([np.sign(run[-1, 0] - run[max(len(run) - 3, 0), 0]) or 1.0, 0.0])
        segments += fit_run(run, tol, t0, t1)
    return segments


def trace_cubic_px(image: np.ndarray, opts=None) -> list[list[np.ndarray]]:
    """Trace a glyph image (uint8, 0 = ink) into closed contours of lines and cubics, in pixels (y down)."""
    from fontgen import tracing as V

    opts = opts or V.TraceOptions()
    return [fit_contour_cubic(points, opts) for points in V.outline_points(image, opts)]


def segments_to_points(segments: list[np.ndarray]) -> list[tuple[float, float, bool]]:
    """(x, y, on_curve) points of one closed contour; a cubic adds off, off, on."""
    pts: list[tuple[float, float, bool]] = []
    if not segments:
        return pts
    pts.append((float(segments[0][0][0]), float(segments[0][0][1]), True))
    for seg in segments:
        for q in seg[1:-1]:
            pts.append((float(q[0]), float(q[1]), False))
        pts.append((float(seg[-1][0]), float(seg[-1][1]), True))
    if len(pts) > 1 and abs(pts[-1][0] - pts[0][0]) < 1e-6 and abs(pts[-1][1] - pts[0][1]) < 1e-6:
        pts.pop()  # the contour closes on its first point
    # drop repeated on-curve points
    cleaned = []
    for pt in pts:
        if cleaned and pt[2] and cleaned[-1][2] and abs(pt[0] - cleaned[-1][0]) < 1e-9 \
                and abs(pt[1] - cleaned[-1][1]) < 1e-9:
            continue
        cleaned.append(pt)
    return cleaned


def trace_glyph_cubic(image: np.ndarray, geometry: Geometry, opts=None) -> list[list]:
    """Trace a glyph image into cubic contours in the geometry's font units (y up).

    Points are (x, y, on_curve) with off-curve points in pairs (cubic segments); outer
    contours counter-clockwise, holes clockwise (PostScript). `tracing.map_contours`
    places them in another em box as it does quadratic contours.
    """
    out = []
    for segments in trace_cubic_px(image, opts):
        pts = segments_to_points(segments)
        if len(pts) < 2:
            continue
        xy = np.array([(x, y) for x, y, _ in pts])
        fx, fy = geometry.to_font_units(xy[:, 0], xy[:, 1])
        out.append([(float(x), float(y), on) for x, y, (_, _, on) in zip(fx, fy, pts)])
    return out


def draw_cubic_contours(pen, contours: list[list]) -> None:
    """Draw (x, y, on_curve) cubic contours (off-curve points in pairs) with a segment pen."""
    from fontgen.tracing import draw_contours

    draw_contours(pen, contours, cubic=True)


def flatten_cubic_contour(contour: list, steps: int = 12) -> np.ndarray:
    """Polyline (N, 2) of a closed cubic contour (for measurement)."""
    c = list(contour)
    out = [np.array([c[0][:2]], dtype=float)]
    cur = np.array(c[0][:2], dtype=float)
    offs: list = []
    u = np.linspace(0, 1, steps + 1)[1:]
    for x, y, on in c[1:] + [c[0]]:
        p = np.array([x, y], dtype=float)
        if not on:
            offs.append(p)
            continue
        if offs:
            out.append(_bezier(np.stack([cur, offs[0], offs[1], p]), u))
            offs = []
        else:
            out.append(p[None])
        cur = p
    return np.concatenate(out)
