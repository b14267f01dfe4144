"""Tracing: glyph images -> contours -> curves. Pure geometry, no font files.

What it owns (DESIGN.md "Glyph geometry"):

1. Trace each 8-bit anti-aliased image at sub-pixel precision: marching squares on the
   0.5 iso-level of the ink (linear interpolation along the sample grid gives sub-pixel
   contour points). Every contour is oriented with the ink on the same side, so outer
   contours and holes come out nested and directed correctly for TrueType (outer
   clockwise, holes counter-clockwise in y-up font units) without a separate nesting
   pass. Specks below an area threshold are dropped.
2. Corners are found by the turn of the outline over a small arc-length window
   (non-maximum suppressed) and sharpened to the intersection of the adjacent edges; the
   rounded-off points within a pixel of a sharpened corner are left out of the fit.
   Straight runs between corners become lines; curved runs are fitted directly with
   TrueType quadratic B-splines (consecutive off-curve points, implied on-curve
   midpoints, which cost nothing in glyf): least squares for the off-curve points with a
   Newton reparametrisation of the samples (Schneider's scheme, "An Algorithm for
   Automatically Fitting Digitized Curves", Graphics Gems 1990, applied to a spline),
   parameters denser where the outline turns, the number of off-curve points searched
   for against the error bound. A run no affordable spline fits is split at its worst
   point (an explicit on-curve point, typically a soft corner). Cubic output for CFF
   fonts is fitted directly in fontgen.cubic, from the same outline and corners.
   Steps 1-2 run as compiled loops (numba, cached in __pycache__ after the first call;
   about 1-2 ms per 256 px glyph on one core, where numpy calls cost ~15-70 ms).
3. Pixels map to font units by inverting the recorded Geometry, em box onto em box; the
   outline can be drawn back into pixels (display-size scoring, render-back checks).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from fontgen.errors import FontgenError
from fontgen.files import temp_path
from fontgen.fonts import Geometry

_CORNER_SKIP = 1.0  # px of arc next to a sharpened corner left out of the fit (corner rounding)
_CURV_W = 8.0  # px of parameter length added per radian of turn (knots follow the detail)
_MAX_TRIES = 1  # larger spline sizes tried before a run is split at its worst point
_DOWN = 1  # smaller spline sizes tried after a fit succeeds (fewer points vs time)



# ---------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class TraceOptions:
    """Tracing tolerances, all in pixels of the source image unless noted."""

    fit_error: float = 0.3  # max distance of the fitted curve from the traced points
    corner_angle: float = 50.0  # degrees of turn within +-corner_window px that make a sharp corner
    corner_window: float = 2.5  # px of arc length on each side used to measure the turn
    min_speck_area: float = 3.0  # px^2: contours (ink or holes) smaller than this are dropped
    quad_error: float = 0.1  # px: max error of cu2qu for cubic segments (not used by the tracer itself)
    level: float = 0.5  # ink iso-level traced (0..1, 1 = black)
    smooth: float = 0.0  # px: Gaussian sigma applied before tracing, to calm noisy (e.g. GAN) edges

    def __post_init__(self):
        if not self.fit_error > 0:
            raise FontgenError("--fit-error must be > 0 (pixels)")
        if not 0 < self.corner_angle < 180:
            raise FontgenError("--corner-angle must be between 0 and 180 degrees")
        if self.min_speck_area < 0:
            raise FontgenError("--min-speck-area must be >= 0 (square pixels)")
        if not self.quad_error > 0:
            raise FontgenError("quad_error must be > 0")
        if self.smooth < 0:
            raise FontgenError("--smooth must be >= 0 (pixels)")


# ---------------------------------------------------------------------------------------
# Marching squares on the anti-aliased image


def _build_case_table():
    """Oriented segments (from edge, to edge) for the 16 corner cases + 2 saddle variants.

    Corners of a cell go clockwise on screen: 0 top-left, 1 top-right, 2 bottom-right,
    3 bottom-left; edge k joins corner k to corner k+1 (0 top, 1 right, 2 bottom, 3 left).
    A crossing is an entry where edge k goes outside -> inside, an exit otherwise. Each
    segment runs from an entry to an exit, which keeps the ink on the same side of every
    segment, and so of every contour.
    """
    table = {}
    for case in range(16):
        inside = [(case >> k) & 1 for k in range(4)]
        entries = [k for k in range(4) if not inside[k] and inside[(k + 1) % 4]]
        exits = [k for k in range(4) if inside[k] and not inside[(k + 1) % 4]]
        if len(entries) == 1:
            table[case] = [(entries[0], exits[0])]
        elif len(entries) == 2:
            # saddle: separated (center outside): entry -> next exit clockwise;
            # joined (center inside): entry -> previous exit.
            table[(case, 0)] = [(e, (e + 1) % 4) for e in entries]
            table[(case, 1)] = [(e, (e - 1) % 4) for e in entries]
    return table


_CASES = _build_case_table()
# seg_from[k], seg_to[k] for k = case (0..15), 16 = saddle 5 joined, 17 = saddle 10 joined
_SEG = np.full((18, 2, 2), -1, dtype=np.int64)
for _case in range(16):
    _segs = _CASES.get(_case) or _CASES.get((_case, 0)) or []
    for _i, (_a, _b) in enumerate(_segs):
        _SEG[_case, _i] = (_a, _b)
for _i, (_a, _b) in enumerate(_CASES[(5, 1)]):
    _SEG[16, _i] = (_a, _b)
for _i, (_a, _b) in enumerate(_CASES[(10, 1)]):
    _SEG[17, _i] = (_a, _b)


def iso_contours(ink: np.ndarray, level: float = 0.5) -> list[np.ndarray]:
    """Closed contours of `ink` (H x W, 0..1, 1 = ink) at `level`, in pixel coordinates.

    Samples sit at pixel centres (x + 0.5, y + 0.5); the image is padded with no ink so
    every contour closes. Each contour is an (N, 2) array of (x, y) points, y down; every
    contour has the ink on the same side (outer contours and holes run opposite ways).
    """
    pts, starts, _ = _nb_iso_contours(np.ascontiguousarray(ink, dtype=np.float64), float(level), _SEG)
    return [pts[a:b] for a, b in zip(starts[:-1].tolist(), starts[1:].tolist())]


# ---------------------------------------------------------------------------------------
# Corners and curve fitting
#
# The per-contour work (corners, sharpening, spline fitting with its size search and
# splitting) runs as compiled loops (numba): the numpy version spent nearly all its time
# in the overhead of thousands of tiny array calls per glyph (~100 us per least-squares
# step). The algorithm is the one described in the module docstring, step for step.

def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temp_path(folder / "numba-cache-check")
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def _numba_cache_dir() -> str | None:
    """Where numba may keep the compiled kernels: beside this file, else a per-user cache folder.

    numba itself gives up ("cannot cache function ... no locator available") when neither
    the package folder nor the home folder can be written (a system-wide install, a
    service user); None then means: compile every run, without a cache.
    """
    if os.environ.get("NUMBA_CACHE_DIR") or _writable_folder(Path(__file__).resolve().parent / "__pycache__"):
        return ""  # numba's own choice works
    uid = os.getuid() if hasattr(os, "getuid") else 0
    for base in (os.environ.get("XDG_CACHE_HOME"), os.path.expanduser("~/.cache"), tempfile.gettempdir()):
        if base:
            folder = Path(base) / f"fontgen-numba-{uid}"
            if _writable_folder(folder):
                return str(folder)
    return None


try:
    import numba as _numba

    _cache_dir = _numba_cache_dir()
    if _cache_dir:
        _numba.config.CACHE_DIR = _cache_dir
    _njit = _numba.njit(cache=_cache_dir is not None, nogil=True, error_model="numpy")
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a (slow) fallback
    _numba = None
    _cache_dir = None

    def _njit(f):
        return f


def _signed_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


@_njit
def _nb_dedupe(p):
    n = len(p)
    keep = np.zeros(n, np.bool_)
    cnt = 0
    for i in range(n):
        j = i + 1 if i + 1 < n else 0
        if abs(p[j, 0] - p[i, 0]) + abs(p[j, 1] - p[i, 1]) > 1e-9:
            keep[i] = True
            cnt += 1
    if cnt < 3:
        return p.copy()
    out = np.empty((cnt, 2))
    k = 0
    for i in range(n):
        if keep[i]:
            out[k, 0] = p[i, 0]
            out[k, 1] = p[i, 1]
            k += 1
    return out


@_njit
def _nb_at(s3, p3, target, n, lo):
    """Point at arc length `target` on the tripled contour (linear interpolation), and the
    index of the last sample at or before it; `lo` is such an index for a smaller target
    (targets come in increasing order, so the search only walks forward)."""
    while lo + 1 < 3 * n and s3[lo + 1] <= target:
        lo += 1
    i = min(max(lo, 0), 3 * n - 2)
    seg = s3[i + 1] - s3[i]
    f = (target - s3[i]) / seg if seg > 0 else 0.0
    f = min(max(f, 0.0), 1.0)
    return p3[i, 0] * (1 - f) + p3[i + 1, 0] * f, p3[i, 1] * (1 - f) + p3[i + 1, 1] * f, lo


@_njit
def _nb_find_corners(p, s, total, corner_angle, corner_window):
    """Indices of sharp corners: turn >= corner_angle over +-window, local maxima."""
    n = len(p)
    w = min(corner_window, total / 6)
    if n < 6 or w <= 0:
        return np.empty(0, np.int64)
    s3 = np.empty(3 * n)
    p3 = np.empty((3 * n, 2))
    for r in range(3):
        for i in range(n):
            s3[r * n + i] = s[i] + (r - 1) * total
            p3[r * n + i, 0] = p[i, 0]
            p3[r * n + i, 1] = p[i, 1]
    turn = np.empty(n)
    ncand = 0
    lo_b = np.searchsorted(s3, s[0] - w, side="right") - 1
    lo_f = np.searchsorted(s3, s[0] + w, side="right") - 1
    for i in range(n):
        bx, by, lo_b = _nb_at(s3, p3, s[i] - w, n, lo_b)
        fx, fy, lo_f = _nb_at(s3, p3, s[i] + w, n, lo_f)
        ax, ay = p[i, 0] - bx, p[i, 1] - by
        cx, cy = fx - p[i, 0], fy - p[i, 1]
        turn[i] = math.degrees(abs(math.atan2(ax * cy - ay * cx, ax * cx + ay * cy)))
        if turn[i] >= corner_angle:
            ncand += 1
    if ncand == 0:
        return np.empty(0, np.int64)
    cand = np.empty(ncand, np.int64)
    k = 0
    for i in range(n):
        if turn[i] >= corner_angle:
            cand[k] = i
            k += 1
    order = np.argsort(-turn[cand], kind="mergesort")
    corners = np.empty(ncand, np.int64)
    nc = 0
    for oi in range(ncand):  # non-maximum suppression within +-w of arc length (circular)
        i = cand[order[oi]]
        ok = True
        for cj in range(nc):
            d = abs(s[i] - s[corners[cj]])
            if min(d, total - d) < w:
                ok = False
                break
        if ok:
            corners[nc] = i
            nc += 1
    return np.sort(corners[:nc])


@_njit
def _nb_line_fit(q):
    m = len(q)
    mx = 0.0
    my = 0.0
    for i in range(m):
        mx += q[i, 0]
        my += q[i, 1]
    mx /= m
    my /= m
    sxx = syy = sxy = 0.0
    for i in range(m):
        dx, dy = q[i, 0] - mx, q[i, 1] - my
        sxx += dx * dx
        syy += dy * dy
        sxy += dx * dy
    angle = 0.5 * math.atan2(2 * sxy, sxx - syy)
    return mx, my, math.cos(angle), math.sin(angle)


@_njit
def _nb_arc_points(p, s, total, c, direction, lo, hi):
    """The points whose arc distance from point c, walking in `direction` (+-1) around the
    contour, is within lo..hi, in index order (the arc distance grows along the walk)."""
    n = len(p)
    idx = np.empty(n, np.int64)
    cnt = 0
    j = c
    for _ in range(n):
        d = (s[j] - s[c]) % total if direction > 0 else (s[c] - s[j]) % total
        if d > hi:
            break
        if d >= lo:
            idx[cnt] = j
            cnt += 1
        j = (j + direction) % n
    idx = np.sort(idx[:cnt])
    q = np.empty((cnt, 2))
    for k in range(cnt):
        q[k, 0] = p[idx[k], 0]
        q[k, 1] = p[idx[k], 1]
    return q


@_njit
def _nb_sharpen_corners(p, s, total, corners, reach):
    """Move each corner to the intersection of the straight-ish edges that meet there."""
    p = p.copy()
    k = len(corners)
    min_det = math.sin(math.radians(20))
    for ci in range(k):
        c = corners[ci]
        prev_c = corners[ci - 1] if k > 1 else c
        next_c = corners[(ci + 1) % k] if k > 1 else c
        gap_prev = (s[c] - s[prev_c]) % total
        if gap_prev == 0:
            gap_prev = total
        gap_next = (s[next_c] - s[c]) % total
        if gap_next == 0:
            gap_next = total
        r_in = min(reach, gap_prev / 2)
        r_out = min(reach, gap_next / 2)
        if r_in < 1.5 or r_out < 1.5:
            continue
        q_in = _nb_arc_points(p, s, total, c, -1, 0.75, r_in)
        q_out = _nb_arc_points(p, s, total, c, 1, 0.75, r_out)
        if len(q_in) < 2 or len(q_out) < 2:
            continue
        m1x, m1y, u1x, u1y = _nb_line_fit(q_in)
        m2x, m2y, u2x, u2y = _nb_line_fit(q_out)
        det = u1x * (-u2y) - u1y * (-u2x)
        if abs(det) < min_det:
            continue
        rx, ry = m2x - m1x, m2y - m1y
        t1 = (rx * (-u2y) - ry * (-u2x)) / det
        xx, xy = m1x + t1 * u1x, m1y + t1 * u1y
        if math.hypot(xx - p[c, 0], xy - p[c, 1]) <= 1.5:
            p[c, 0] = xx
            p[c, 1] = xy
    return p


# Quadratic B-spline fitting (TrueType's native curve: consecutive off-curve points with
# implied on-curve midpoints), least squares with Newton reparametrisation.


class QuadSpline:
    """An open run P0, C1..Cn, Pend (on, n off-curve, on), or a closed all-off-curve loop."""

    __slots__ = ("points", "closed")

    def __init__(self, points: np.ndarray, closed: bool = False):
        self.points = points
        self.closed = closed


@_njit
def _nb_seg_coords(tk, n, closed):
    """Segment index, local parameter and end-point factors of parameter tk."""
    if closed:
        ft = math.floor(tk)
        u = tk - ft
        k = int(ft) % n
        return k, u, 0.5, 0.5
    k = min(int(tk), n - 1)
    u = tk - k
    fa = 1.0 if k == 0 else 0.5
    fc = 1.0 if k == n - 1 else 0.5
    return k, u, fa, fc


@_njit
def _nb_solve_band(band, rx, ry):
    """Solve a symmetric positive definite pentadiagonal system in place (band[i, j - i + 2])."""
    n = len(rx)
    for i in range(n):
        piv = band[i, 2]
        for r in range(i + 1, min(i + 3, n)):
            f = band[r, i - r + 2] / piv
            if f != 0.0:
                for c in range(i, min(i + 3, n)):
                    band[r, c - r + 2] -= f * band[i, c - i + 2]
                rx[r] -= f * rx[i]
                ry[r] -= f * ry[i]
    for i in range(n - 1, -1, -1):
        ax, ay = rx[i], ry[i]
        for c in range(i + 1, min(i + 3, n)):
            ax -= band[i, c - i + 2] * rx[c]
            ay -= band[i, c - i + 2] * ry[c]
        rx[i] = ax / band[i, 2]
        ry[i] = ay / band[i, 2]


@_njit
def _nb_solve_dense(A, rx, ry):
    """Gaussian elimination with partial pivoting, in place."""
    n = len(rx)
    for i in range(n):
        pr = i
        for r in range(i + 1, n):
            if abs(A[r, i]) > abs(A[pr, i]):
                pr = r
        if pr != i:
            for c in range(n):
                A[i, c], A[pr, c] = A[pr, c], A[i, c]
            rx[i], rx[pr] = rx[pr], rx[i]
            ry[i], ry[pr] = ry[pr], ry[i]
        piv = A[i, i]
        for r in range(i + 1, n):
            f = A[r, i] / piv
            if f != 0.0:
                for c in range(i, n):
                    A[r, c] -= f * A[i, c]
                rx[r] -= f * rx[i]
                ry[r] -= f * ry[i]
    for i in range(n - 1, -1, -1):
        ax, ay = rx[i], ry[i]
        for c in range(i + 1, n):
            ax -= A[i, c] * rx[c]
            ay -= A[i, c] * ry[c]
        rx[i] = ax / A[i, i]
        ry[i] = ay / A[i, i]


@_njit
def _nb_spline_step(Z, t, n, closed, newton):
    """One least-squares solve of the off-curve points for parameters t, then the error.

    Segment k of the spline (local u in 0..1) is the quadratic A, C_k, B with A, B the
    midpoints of C_k and its neighbours (or the fixed end points of an open run). In
    "extended" indexing E = [P0 | C_-1, C_0..C_n-1, Pend | C_n] a point of segment k
    depends on E[k], E[k+1], E[k+2] only, so the normal equations are pentadiagonal
    (cyclic for a closed spline). Returns (squared errors, E (n+2, 2), Newton step for
    every parameter, zeros without newton).
    """
    m = len(t)
    ne = n + 2
    band = np.zeros((ne, 5))  # normal matrix in extended indexing, band[i, j - i + 2]
    rx = np.zeros(ne)
    ry = np.zeros(ne)
    ks = np.empty(m, np.int64)
    us = np.empty(m)
    for i in range(m):
        k, u, fa, fc = _nb_seg_coords(t[i], n, closed)
        ks[i] = k
        us[i] = u
        mu = 1.0 - u
        w0 = fa * mu * mu
        w2 = fc * u * u
        w1 = 1.0 - w0 - w2  # the weights sum to 1
        zx, zy = Z[i, 0], Z[i, 1]
        band[k, 2] += w0 * w0
        band[k, 3] += w0 * w1
        band[k, 4] += w0 * w2
        band[k + 1, 1] += w1 * w0
        band[k + 1, 2] += w1 * w1
        band[k + 1, 3] += w1 * w2
        band[k + 2, 0] += w2 * w0
        band[k + 2, 1] += w2 * w1
        band[k + 2, 2] += w2 * w2
        rx[k] += w0 * zx
        ry[k] += w0 * zy
        rx[k + 1] += w1 * zx
        ry[k + 1] += w1 * zy
        rx[k + 2] += w2 * zx
        ry[k + 2] += w2 * zy
    ext = np.empty((ne, 2))
    if closed:
        A = np.zeros((n, n))
        bx = np.zeros(n)
        by = np.zeros(n)
        for i in range(ne):
            ri = (i - 1) % n
            bx[ri] += rx[i]
            by[ri] += ry[i]
            for d in range(5):
                j = i + d - 2
                if 0 <= j < ne:
                    A[ri, (j - 1) % n] += band[i, d]
        tr = 0.0
        for i in range(n):
            tr += A[i, i]
        reg = 1e-9 * (tr / n + 1.0)
        for i in range(n):
            A[i, i] += reg
        _nb_solve_dense(A, bx, by)
        for i in range(n):
            ext[i + 1, 0] = bx[i]
            ext[i + 1, 1] = by[i]
        ext[0, 0], ext[0, 1] = ext[n, 0], ext[n, 1]
        ext[n + 1, 0], ext[n + 1, 1] = ext[1, 0], ext[1, 1]
    else:
        z0x, z0y = Z[0, 0], Z[0, 1]
        z1x, z1y = Z[m - 1, 0], Z[m - 1, 1]
        Ab = np.zeros((n, 5))
        bx = np.empty(n)
        by = np.empty(n)
        tr = 0.0
        for i in range(n):
            e = i + 1
            for d in range(5):
                j = e + d - 2
                if 1 <= j <= n:
                    Ab[i, d] = band[e, d]
            c0 = band[e, 1] if e == 1 else (band[e, 0] if e == 2 else 0.0)  # Ae[e, 0]
            c1 = band[e, 3] if e == n else (band[e, 4] if e == n - 1 else 0.0)  # Ae[e, n + 1]
            bx[i] = rx[e] - c0 * z0x - c1 * z1x
            by[i] = ry[e] - c0 * z0y - c1 * z1y
            tr += Ab[i, 2]
        reg = 1e-9 * (tr / n + 1.0)
        for i in range(n):
            Ab[i, 2] += reg
        _nb_solve_band(Ab, bx, by)
        for i in range(n):
            ext[i + 1, 0] = bx[i]
            ext[i + 1, 1] = by[i]
        ext[0, 0], ext[0, 1] = z0x, z0y
        ext[n + 1, 0], ext[n + 1, 1] = z1x, z1y
    err = np.empty(m)
    step = np.zeros(m)
    for i in range(m):
        k, u = ks[i], us[i]
        fa = 0.5 if closed or k > 0 else 1.0
        fc = 0.5 if closed or k < n - 1 else 1.0
        mu = 1.0 - u
        wp, wn = mu * mu, u * u
        e0x, e0y = ext[k, 0], ext[k, 1]
        e1x, e1y = ext[k + 1, 0], ext[k + 1, 1]
        e2x, e2y = ext[k + 2, 0], ext[k + 2, 1]
        dax, day = fa * (e1x - e0x), fa * (e1y - e0y)  # C_k - A
        dbx, dby = fc * (e2x - e1x), fc * (e2y - e1y)  # B - C_k
        qx = e1x - wp * dax + wn * dbx - Z[i, 0]
        qy = e1y - wp * day + wn * dby - Z[i, 1]
        err[i] = qx * qx + qy * qy
        if newton:
            d1x, d1y = 2.0 * (mu * dax + u * dbx), 2.0 * (mu * day + u * dby)
            d2x, d2y = 2.0 * (dbx - dax), 2.0 * (dby - day)
            num = qx * d1x + qy * d1y
            den = d1x * d1x + d1y * d1y + qx * d2x + qy * d2y
            if den > 1e-12:
                step[i] = num / den
    return err, ext, step


@_njit
def _nb_spline_fit_n(Z, t, n, tol2, closed, iters):
    """Fit with n off-curve points from parameters t (0..n), alternating least squares and
    Newton reparametrisation; returns (max squared error, ext, t, squared errors)."""
    best_worst = -1.0
    best_ext = np.empty((0, 2))
    best_t = t
    best_err = np.empty(0)
    for it in range(iters + 1):
        newton = it < iters
        err, ext, step = _nb_spline_step(Z, t, n, closed, newton)
        worst = err.max()
        if best_worst >= 0 and worst > 0.95 * best_worst:
            break  # Newton stalls
        if best_worst < 0 or worst < best_worst:
            best_worst, best_ext, best_t, best_err = worst, ext, t, err
        if worst <= tol2 or not newton:
            break
        m = len(t)
        t2 = np.empty(m)
        for i in range(m):
            t2[i] = t[i] - min(max(step[i], -0.5), 0.5)
        if closed:
            for i in range(m):
                t2[i] = t2[i] % n
        else:
            for i in range(m):
                t2[i] = min(max(t2[i], 0.0), float(n))
            t2[0], t2[m - 1] = 0.0, float(n)
            for i in range(1, m):
                if t2[i] < t2[i - 1]:
                    t2[i] = t2[i - 1]
        t = t2
    return best_worst, best_ext, best_t, best_err


@_njit
def _nb_find(f_n, nn):
    for j in range(len(f_n)):
        if f_n[j] == nn:
            return j
    return -1


@_njit
def _nb_attempt(P, s01, nn, tol2, closed, f_n, f_worst, f_ext, f_t, f_err):
    """Fit with nn off-curve points unless done already; whether it is within tolerance."""
    j = _nb_find(f_n, nn)
    if j < 0:
        # warm start from the nearest close fit already made (parameters scale with n)
        near = -1
        for q in range(len(f_n)):
            if near < 0 or abs(f_n[q] - nn) < abs(f_n[near] - nn):
                near = q
        if near >= 0 and f_worst[near] <= 4 * tol2:
            t = f_t[near] * (nn / f_n[near])
        else:
            t = s01 * nn
        worst, ext, tt, err = _nb_spline_fit_n(P, t, nn, tol2, closed, 1)
        f_n.append(nn)
        f_worst.append(worst)
        f_ext.append(ext)
        f_t.append(tt)
        f_err.append(err)
        j = len(f_n) - 1
    return f_worst[j] <= tol2


@_njit
def _nb_predict(nn, f_n, f_worst, tol2):
    """Error of a quadratic spline falls off about as n^-3 (error ~ sqrt): the n that fits."""
    ratio = math.sqrt(f_worst[_nb_find(f_n, nn)] / tol2)
    return nn * ratio ** (1 / 3)


@_njit
def _nb_fit_spline(P, tol, closed, max_tries, curv_w, n_down):
    """Few off-curve points (searched for) whose quadratic spline stays within tol of P.

    Returns (ok, ext (n+2, 2) with the end points of an open run, index of the worst
    point when no affordable spline fits)."""
    m = len(P)
    mc = m + 1 if closed else m
    Pc = np.empty((mc, 2))
    Pc[:m] = P
    if closed:
        Pc[m] = P[0]
    seg = np.empty(mc - 1)
    for i in range(mc - 1):
        seg[i] = math.hypot(Pc[i + 1, 0] - Pc[i, 0], Pc[i + 1, 1] - Pc[i, 1])
    # turning of the run, from chords over 3 samples (single steps zigzag on the pixel
    # grid): start from about one quadratic per 120 degrees of turn
    h = 3 if mc > 8 else 1
    na = mc - h
    ang = np.empty(na)
    for i in range(na):
        ang[i] = math.atan2(Pc[i + h, 1] - Pc[i, 1], Pc[i + h, 0] - Pc[i, 0])
    nd = max(na - 1, 0)
    dth = np.empty(nd)
    turn = 0.0
    for i in range(nd):
        dth[i] = abs((ang[i + 1] - ang[i] + math.pi) % (2 * math.pi) - math.pi)
        turn += dth[i]
    turn /= h
    wseg = seg.copy()
    if curv_w > 0 and nd > 4:
        # parameters denser where the outline turns: spline knots follow the detail
        c = curv_w * 0.5 / (3 * h)
        for i in range(nd):
            sm = dth[i]
            if i > 0:
                sm += dth[i - 1]
            if i + 1 < nd:
                sm += dth[i + 1]
            wseg[h // 2 + 1 + i] += c * sm
            wseg[h // 2 + i] += c * sm
    s = np.empty(mc)
    s[0] = 0.0
    for i in range(mc - 1):
        s[i + 1] = s[i] + wseg[i]
    total = s[mc - 1]
    s01 = np.empty(m)
    for i in range(m):
        s01[i] = s[i] / total if total > 0 else (i / (mc - 1) if mc > 1 else 0.0)
    n_min = 3 if closed else 1
    n_max = max(n_min, m // 2)
    n = int(min(max(n_min, math.ceil(turn / math.radians(120))), n_max))
    tol2 = tol * tol

    # fits made so far, in order: n, max squared error, ext, t, squared errors
    f_n = [0]
    f_worst = [0.0]
    f_ext = [np.empty((0, 2))]
    f_t = [np.empty(0)]
    f_err = [np.empty(0)]
    f_n.pop()
    f_worst.pop()
    f_ext.pop()
    f_t.pop()
    f_err.pop()

    if _nb_attempt(P, s01, n, tol2, closed, f_n, f_worst, f_ext, f_t, f_err):
        down = max(n_min, min(n - 1, int(_nb_predict(n, f_n, f_worst, tol2))))
        tries = 0
        while n > n_min and tries < n_down and _nb_attempt(P, s01, down, tol2, closed,
                                                            f_n, f_worst, f_ext, f_t, f_err):
            n = down
            down = n - 1
            tries += 1
    else:
        tries = 0
        while True:
            up = min(n_max, max(n + 1, int(math.ceil(_nb_predict(n, f_n, f_worst, tol2)))))
            tries += 1
            if up == n or (max_tries > 0 and tries > max_tries):
                # no spline of affordable size: the caller splits at the worst point
                return False, np.empty((0, 2)), int(np.argmax(f_err[_nb_find(f_n, n)]))
            if _nb_attempt(P, s01, up, tol2, closed, f_n, f_worst, f_ext, f_t, f_err):
                # step back when the prediction jumped
                while up - 1 > n and _nb_attempt(P, s01, up - 1, tol2, closed, f_n, f_worst, f_ext, f_t, f_err):
                    up -= 1
                n = up
                break
            n = up
    return True, f_ext[_nb_find(f_n, n)], -1


# Fitted segments are written into flat buffers: kind (_LINE, _SPLINE: open run P0,
# C1..Cn, Pend; _LOOP: closed all-off-curve spline), first point and point count.
_LINE, _SPLINE, _LOOP = 0, 1, 2


@_njit
def _nb_emit(kind, pts, xy, seg, used):
    ns, npt = used[0], used[1]
    seg[ns, 0], seg[ns, 1], seg[ns, 2] = kind, npt, len(pts)
    xy[npt:npt + len(pts)] = pts
    used[0] = ns + 1
    used[1] = npt + len(pts)


@_njit
def _nb_fit_piece(P, tol, curv_w, n_down, max_tries, xy, seg, used):
    """A line if P is straight within tol, else quadratic splines split at their worst
    points (depth first, left piece first: the segments come out in order)."""
    stack = [(0, len(P), 0)]  # pieces P[a:b] and their split depth
    while len(stack) > 0:
        a, b, depth = stack.pop()
        Q = P[a:b]
        m = b - a
        if m <= 3:
            _nb_emit(_LINE, np.stack((Q[0], Q[m - 1])), xy, seg, used)
            continue
        cx, cy = Q[m - 1, 0] - Q[0, 0], Q[m - 1, 1] - Q[0, 1]
        L = math.hypot(cx, cy)
        if L > 1e-9:
            straight = True
            for i in range(m):
                dx, dy = Q[i, 0] - Q[0, 0], Q[i, 1] - Q[0, 1]
                along = (dx * cx + dy * cy) / L
                if abs(dx * cy - dy * cx) / L > tol or along <= -tol or along >= L + tol:
                    straight = False
                    break
            if straight:
                _nb_emit(_LINE, np.stack((Q[0], Q[m - 1])), xy, seg, used)
                continue
        ok, ext, worst = _nb_fit_spline(Q, tol, False, 0 if depth > 8 else max_tries, curv_w, n_down)
        if ok:
            _nb_emit(_SPLINE, ext, xy, seg, used)
            continue
        if m < 7 or depth > 12:  # nothing left to split: keep the points as a polygon
            for i in range(m - 1):
                _nb_emit(_LINE, Q[i:i + 2], xy, seg, used)
            continue
        w = min(max(worst, 3), m - 4)
        stack.append((a + w, b, depth + 1))
        stack.append((a, a + w + 1, depth + 1))


@_njit
def _nb_fit_contour(p, fit_error, corner_angle, corner_window, corner_skip, curv_w, n_down, max_tries):
    """Segments of one closed contour, in order: (xy points, seg rows kind/first/count)."""
    p = _nb_dedupe(p)
    n = len(p)
    seglen = np.empty(n)
    for i in range(n):
        j = i + 1 if i + 1 < n else 0
        seglen[i] = math.sqrt((p[j, 0] - p[i, 0]) ** 2 + (p[j, 1] - p[i, 1]) ** 2)
    s = np.empty(n)
    s[0] = 0.0
    for i in range(1, n):
        s[i] = s[i - 1] + seglen[i - 1]
    total = seglen.sum()
    xy = np.empty((8 * n + 64, 2))  # bounds: every piece emits at most 2 points per input point
    seg = np.empty((4 * n + 32, 3), np.int64)
    used = np.zeros(2, np.int64)
    corners = _nb_find_corners(p, s, total, corner_angle, corner_window)
    k = len(corners)
    if k > 0:
        p = _nb_sharpen_corners(p, s, total, corners, 4.0)
        for ci in range(k):
            a, b = corners[ci], corners[(ci + 1) % k]
            cnt = b - a + 1 if b > a else n - a + b + 1
            run = np.empty((cnt, 2))
            for r in range(cnt):
                run[r] = p[(a + r) % n]
            # the traced outline rounds every corner off within about a pixel; the corner
            # itself was moved to the intersection of its edges, so those points are noise
            if corner_skip > 0 and cnt > 4:
                rs = np.empty(cnt)
                rs[0] = 0.0
                for r in range(1, cnt):
                    rs[r] = rs[r - 1] + math.hypot(run[r, 0] - run[r - 1, 0], run[r, 1] - run[r - 1, 1])
                keep = np.empty(cnt, np.bool_)
                nk = 0
                for r in range(cnt):
                    keep[r] = (r == 0 or r == cnt - 1 or
                               (rs[r] >= corner_skip and rs[r] <= rs[cnt - 1] - corner_skip))
                    if keep[r]:
                        nk += 1
                if nk >= 3 and nk < cnt:
                    kept = np.empty((nk, 2))
                    q = 0
                    for r in range(cnt):
                        if keep[r]:
                            kept[q] = run[r]
                            q += 1
                    run = kept
            _nb_fit_piece(run, fit_error, curv_w, n_down, max_tries, xy, seg, used)
    else:
        # smooth closed curve: one closed spline (off-curve points only), or two open runs
        done = False
        if n >= 8:
            ok, ext, _ = _nb_fit_spline(p, fit_error, True, 0, curv_w, n_down)
            if ok:
                _nb_emit(_LOOP, ext[1:len(ext) - 1], xy, seg, used)
                done = True
        if not done:
            half = min(max(np.searchsorted(s, total / 2), 2), n - 2)
            _nb_fit_piece(p[:half + 1].copy(), fit_error, curv_w, n_down, max_tries, xy, seg, used)
            second = np.empty((n - half + 1, 2))
            second[:n - half] = p[half:]
            second[n - half] = p[0]
            _nb_fit_piece(second, fit_error, curv_w, n_down, max_tries, xy, seg, used)
    return xy[:used[1]].copy(), seg[:used[0]].copy()


@_njit
def _nb_link(nxt):
    """Follow successor links into loops: (indices in loop order, loop start offsets)."""
    m = len(nxt)
    seen = np.zeros(m, np.bool_)
    order = np.empty(m, np.int64)
    starts = np.empty(m + 1, np.int64)
    nl = 0
    pos = 0
    for start in range(m):
        if seen[start]:
            continue
        starts[nl] = pos
        nl += 1
        k = start
        while not seen[k]:
            seen[k] = True
            order[pos] = k
            pos += 1
            k = nxt[k]
    starts[nl] = pos
    return order, starts[:nl + 1].copy()


@_njit
def _nb_ink(image):
    """Ink coverage 0..1 of an 8-bit grey image (0 = ink)."""
    out = np.empty(image.shape)
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            out[i, j] = 1.0 - image[i, j] / 255.0
    return out


@_njit
def _nb_iso_contours(ink, level, segtab):
    """Marching squares (see iso_contours): (points of all contours one after the other,
    contour start offsets, signed area of each contour).

    Segments are numbered as the crossings they start from: every active cell's first
    segment in row-major order, then the second segments of the saddle cells; contours are
    followed from the lowest-numbered segment not yet used.
    """
    H, W = ink.shape
    R, C = H + 2, W + 2
    v = np.zeros((R, C))  # padded with no ink
    v[1:H + 1, 1:W + 1] = ink
    cases = np.empty((R - 1, C - 1), np.int8)
    nact = 0
    nsad = 0
    for i in range(R - 1):
        for j in range(C - 1):
            cs = ((1 if v[i, j] > level else 0) | (2 if v[i, j + 1] > level else 0)
                  | (4 if v[i + 1, j + 1] > level else 0) | (8 if v[i + 1, j] > level else 0))
            if cs == 5 or cs == 10:
                centre = (v[i, j] + v[i, j + 1] + v[i + 1, j] + v[i + 1, j + 1]) / 4 > level
                if centre:
                    cs = 16 if cs == 5 else 17
                nsad += 1
            elif cs != 0 and cs != 15:
                nact += 1
            cases[i, j] = cs
    nact += nsad
    m = nact + nsad
    src = np.empty(m, np.int64)
    dst = np.empty(m, np.int64)
    eid = np.empty(4, np.int64)
    a = 0
    b = nact
    for i in range(R - 1):
        for j in range(C - 1):
            cs = cases[i, j]
            if cs == 0 or cs == 15:
                continue
            eid[0] = i * C + j  # top: horizontal (i, j)
            eid[1] = R * C + i * C + j + 1  # right: vertical (i, j + 1)
            eid[2] = (i + 1) * C + j  # bottom: horizontal (i + 1, j)
            eid[3] = R * C + i * C + j  # left: vertical (i, j)
            src[a] = eid[segtab[cs, 0, 0]]
            dst[a] = eid[segtab[cs, 0, 1]]
            a += 1
            if segtab[cs, 1, 0] >= 0:
                src[b] = eid[segtab[cs, 1, 0]]
                dst[b] = eid[segtab[cs, 1, 1]]
                b += 1
    # crossing positions (sub-pixel, linear along the edge) and links
    pts = np.empty((m, 2))
    start_at = np.full(2 * R * C, -1, np.int64)
    for k in range(m):
        e = src[k]
        start_at[e] = k
        if e < R * C:
            i, j = e // C, e % C
            lo, hi = v[i, j], v[i, j + 1]
            pts[k, 0] = j + (level - lo) / (hi - lo) - 0.5
            pts[k, 1] = i - 0.5
        else:
            i, j = (e - R * C) // C, (e - R * C) % C
            lo, hi = v[i, j], v[i + 1, j]
            pts[k, 0] = j - 0.5
            pts[k, 1] = i + (level - lo) / (hi - lo) - 0.5
    nxt = np.empty(m, np.int64)
    for k in range(m):
        nxt[k] = start_at[dst[k]]
    order, starts = _nb_link(nxt)
    out = np.empty((m, 2))
    for k in range(m):
        out[k] = pts[order[k]]
    nl = len(starts) - 1
    areas = np.empty(nl)
    for c in range(nl):
        s0, s1 = starts[c], starts[c + 1]
        acc = 0.0
        for k in range(s0, s1):
            k2 = k + 1 if k + 1 < s1 else s0
            acc += out[k, 0] * out[k2, 1] - out[k, 1] * out[k2, 0]
        areas[c] = 0.5 * acc
    return out, starts, areas


def fit_contour(p: np.ndarray, opts: TraceOptions) -> list:
    """Segments of one closed contour, in order: lines (arrays of 2 points) and QuadSplines."""
    xy, seg = _nb_fit_contour(np.ascontiguousarray(p, dtype=np.float64), float(opts.fit_error),
                              float(opts.corner_angle), float(opts.corner_window), _CORNER_SKIP, _CURV_W,
                              _DOWN, _MAX_TRIES)
    segments: list = []
    for kind, a, cnt in seg.tolist():
        pts = xy[a:a + cnt]
        segments.append(pts if kind == _LINE else QuadSpline(pts, kind == _LOOP))
    return segments


def outline_points(image: np.ndarray, opts: TraceOptions = TraceOptions()) -> list[np.ndarray]:
    """The closed sub-pixel outlines of a glyph image (uint8, 0 = ink; or float grey), in pixels:
    the ink (smoothed if asked) cut at the iso-level, specks below the minimum area dropped.
    What every curve fitter starts from (quadratic here, cubic in fontgen.cubic)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        ink = _nb_ink(np.ascontiguousarray(image))
    else:
        ink = np.ascontiguousarray(1.0 - np.asarray(image, dtype=np.float64) / 255.0)
    if opts.smooth > 0:
        ink = ndimage.gaussian_filter(ink, opts.smooth, mode="constant", cval=0.0)
    pts, starts, areas = _nb_iso_contours(ink, float(opts.level), _SEG)
    min_area = max(opts.min_speck_area, 1e-6)
    return [pts[a:b] for a, b, area in zip(starts[:-1].tolist(), starts[1:].tolist(), areas.tolist())
            if b - a >= 3 and abs(area) >= min_area]


def trace_curves(image: np.ndarray, opts: TraceOptions = TraceOptions()) -> list[list[np.ndarray]]:
    """Trace a glyph image (uint8, 0 = ink) into contours of segments in pixels: lines (arrays
    of 2 points) and QuadSplines (TrueType quadratic runs)."""
    return [fit_contour(points, opts) for points in outline_points(image, opts)]


def _quadratic_contour(segments: list[np.ndarray], quad_error: float) -> list[tuple[float, float, bool]]:
    """TrueType points (x, y, on_curve) of one closed contour of lines, QuadSplines and cubics
    (arrays of 4 points, e.g. from another tracer: converted with cu2qu within quad_error)."""
    from fontTools.cu2qu import curve_to_quadratic

    points: list[tuple[float, float, bool]] = []
    for seg in segments:
        if isinstance(seg, QuadSpline):
            q = seg.points
            if seg.closed:
                if len(segments) == 1:
                    return [(float(x), float(y), False) for x, y in q]
                continue  # pragma: no cover - closed splines are whole contours
            points.extend((float(x), float(y), False) for x, y in q[1:-1])
            points.append((float(q[-1][0]), float(q[-1][1]), True))
            continue
        if len(seg) == 2:
            points.append((float(seg[1][0]), float(seg[1][1]), True))
            continue
        quad = curve_to_quadratic([tuple(map(float, q)) for q in seg], quad_error)
        if len(quad) == 3:  # one quadratic: a line if its control point lies on the chord
            (x0, y0), (x1, y1), (x2, y2) = quad
            dx, dy = x2 - x0, y2 - y0
            L = math.hypot(dx, dy)
            if L > 0:
                dist = abs((x1 - x0) * dy - (y1 - y0) * dx) / L
                along = ((x1 - x0) * dx + (y1 - y0) * dy) / (L * L)
                if dist <= quad_error and 0 <= along <= 1:
                    points.append((x2, y2, True))
                    continue
        for q in quad[1:-1]:
            points.append((q[0], q[1], False))
        points.append((quad[-1][0], quad[-1][1], True))
    # drop consecutive duplicate on-curve points
    cleaned = []
    for pt in points:
        if cleaned and pt[2] and cleaned[-1][2] and abs(pt[0] - cleaned[-1][0]) < 1e-6 and abs(pt[1] - cleaned[-1][1]) < 1e-6:
            continue
        cleaned.append(pt)
    if len(cleaned) > 1 and cleaned[0][2] and cleaned[-1][2] and abs(cleaned[0][0] - cleaned[-1][0]) < 1e-6 \
            and abs(cleaned[0][1] - cleaned[-1][1]) < 1e-6:
        cleaned.pop()
    # the last point closes the contour; start the contour on it (on-curve)
    if cleaned and cleaned[-1][2]:
        cleaned = [cleaned[-1]] + cleaned[:-1]
    return cleaned


Contour = list  # list of (x, y, on_curve) in font units


def trace_glyph(image: np.ndarray, geometry: Geometry, opts: TraceOptions = TraceOptions()) -> list[Contour]:
    """Trace a glyph image into TrueType quadratic contours in the geometry's font units.

    Points are (x, y, on_curve) floats in the units of `geometry.units_per_em`, y up;
    outer contours are clockwise and holes counter-clockwise. Use `map_contours` to place
    them in another font's em box.
    """
    out = []
    for segments in trace_curves(image, opts):
        pts = _quadratic_contour(segments, opts.quad_error)
        if len(pts) < 2:
            continue
        xy = np.array([(x, y) for x, y, _ in pts])
        fx, fy = geometry.to_font_units(xy[:, 0], xy[:, 1])
        # marching squares walks with the ink on the right on screen (y down), which is
        # counter-clockwise outers in y-up units: reverse into TrueType's clockwise outers
        # and counter-clockwise holes (the first point stays on-curve).
        c = [(float(x), float(y), on) for x, y, (_, _, on) in zip(fx, fy, pts)]
        out.append(c[:1] + c[:0:-1])
    return out


def map_contours(contours: list[Contour], geometry: Geometry, units_per_em: int, em_bottom: float) -> list[Contour]:
    """Scale contours from the geometry's em box onto a font's em box (its UPM, em bottom)."""
    k = units_per_em / geometry.units_per_em
    dy = em_bottom - geometry.em_bottom * k
    return [[(x * k, y * k + dy, on) for x, y, on in c] for c in contours]


def contours_to_glyph(contours: list[Contour]):
    """A fontTools glyf Glyph from (x, y, on_curve) contours (rounded to integers)."""
    from fontTools.pens.ttGlyphPen import TTGlyphPen

    pen = TTGlyphPen(None)
    draw_contours(pen, contours)
    return pen.glyph(dropImpliedOnCurves=True)


def draw_contours(pen, contours: list[Contour], cubic: bool = False) -> None:
    """Draw (x, y, on_curve) contours with a segment pen: each run of off-curve points between
    on-curve points is one qCurveTo (TrueType quadratic splines) or, with `cubic`, one curveTo
    (pairs of cubic control points)."""
    curve = pen.curveTo if cubic else pen.qCurveTo
    for c in contours:
        if len(c) < (2 if cubic else 1):
            continue
        if not cubic and not any(on for _, _, on in c):  # all off-curve: implied on-curve midpoints only
            pen.qCurveTo(*[(x, y) for x, y, _ in c], None)
            pen.closePath()
            continue
        start = c[0]
        pen.moveTo((start[0], start[1]))
        offs = []
        for x, y, on in c[1:]:
            if on:
                if offs:
                    curve(*offs, (x, y))
                    offs = []
                else:
                    pen.lineTo((x, y))
            else:
                offs.append((x, y))
        if offs:
            curve(*offs, (start[0], start[1]))
        pen.closePath()


# ---------------------------------------------------------------------------------------
# Rasterising outlines (fidelity measurement without FreeType)


def flatten_contour(contour: Contour, steps: int = 8) -> np.ndarray:
    """Polyline (N, 2) of a closed TrueType contour of (x, y, on_curve) points."""
    pts = [(float(x), float(y), bool(on)) for x, y, on in contour]
    if not pts:
        return np.zeros((0, 2))
    if not any(on for _, _, on in pts):  # all off-curve: start at an implied midpoint
        (x0, y0, _), (x1, y1, _) = pts[-1], pts[0]
        pts.insert(0, ((x0 + x1) / 2, (y0 + y1) / 2, True))
    while not pts[0][2]:
        pts = pts[1:] + pts[:1]
    out = [np.array([pts[0][:2]])]
    cur = np.array(pts[0][:2])
    offs = []
    ts = np.linspace(0, 1, steps + 1)[1:, None]
    for x, y, on in pts[1:] + [pts[0]]:
        p = np.array([x, y])
        if on:
            if offs:
                ctrl = offs + [p]
                for i, c in enumerate(ctrl[:-1]):
                    end = ctrl[i + 1] if i + 1 == len(ctrl) - 1 else (c + ctrl[i + 1]) / 2
                    out.append((1 - ts) ** 2 * cur + 2 * ts * (1 - ts) * c + ts ** 2 * end)
                    cur = end
                offs = []
            else:
                out.append(p[None])
            cur = p
        else:
            offs.append(p)
    return np.concatenate(out)


def rasterize_polygons(polys: list[np.ndarray], size: int, supersample: int = 4) -> np.ndarray:
    """Coverage (size x size, 0..1) of closed polygons in pixel coordinates (y down), nonzero
    winding, sampled on a supersample x supersample grid per pixel."""
    n = size * supersample
    wind = np.zeros((n, n + 1), dtype=np.int32)
    for poly in polys:
        if len(poly) < 3:
            continue
        a = poly * supersample
        b = np.roll(a, -1, axis=0)
        y0, y1 = a[:, 1], b[:, 1]
        up = y1 < y0
        ymin, ymax = np.minimum(y0, y1), np.maximum(y0, y1)
        r0 = np.clip(np.ceil(ymin - 0.5), 0, n).astype(np.int64)
        r1 = np.clip(np.ceil(ymax - 0.5), 0, n).astype(np.int64)
        cnt = r1 - r0
        keep = cnt > 0
        if not keep.any():
            continue
        e = np.repeat(np.nonzero(keep)[0], cnt[keep])
        rows = np.concatenate([np.arange(s, t) for s, t in zip(r0[keep], r1[keep])])
        yc = rows + 0.5
        t = (yc - y0[e]) / (y1[e] - y0[e])
        xi = a[e, 0] + t * (b[e, 0] - a[e, 0])
        col = np.clip(np.ceil(xi - 0.5), 0, n).astype(np.int64)
        np.add.at(wind, (rows, col), np.where(up[e], 1, -1))
    inside = np.cumsum(wind[:, :n], axis=1) != 0
    return inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def ink_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean ink masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def trace_quadratic_px(image: np.ndarray, opts: TraceOptions = TraceOptions()) -> list[Contour]:
    """TrueType quadratic contours in pixel coordinates (y down) — for measurement."""
    return [c for c in (_quadratic_contour(s, opts.quad_error) for s in trace_curves(image, opts)) if len(c) >= 2]


def draw_outline(contours: list[Contour], geometry: Geometry, supersample: int = 4) -> np.ndarray:
    """uint8 image (0 = ink, geometry.image_size square) of contours in the geometry's font
    units: flattened, placed by the geometry and filled by `rasterize_polygons`."""
    polys = []
    for c in contours:
        flat = flatten_contour(c)
        x, y = geometry.to_pixels(flat[:, 0], flat[:, 1])
        polys.append(np.column_stack([x, y]))
    coverage = rasterize_polygons(polys, geometry.image_size, supersample)
    return np.round(255.0 * (1.0 - coverage)).astype(np.uint8)


def trace_for_display(image: np.ndarray, geometry: Geometry, display: Geometry,
                      opts: TraceOptions = TraceOptions()) -> np.ndarray:
    """What `fontgen vectorize` makes of one glyph image, drawn at display size.

    `image` is a glyph in `geometry` (the em box at the image's size, as in a generated-glyph
    manifest). It is traced as `vectorize` traces it (`trace_glyph` with `opts`), placed in
    the em box of the font it goes into (`display`'s units per em and em bottom, as
    `merge_into_font` places it), rounded to whole font units as glyf stores them, and
    rasterised in `display` (e.g. the target font's em box at 256 px, `Geometry.resized`).
    Returns a uint8 image at `display.image_size` (0 = ink): the outline a designer sees,
    to compare with the real glyph drawn by `GlyphRenderer` in the same `display` geometry.
    """
    contours = map_contours(trace_glyph(image, geometry, opts), geometry, display.units_per_em, display.em_bottom)
    rounded = [[(math.floor(x + 0.5), math.floor(y + 0.5), on) for x, y, on in c] for c in contours]
    return draw_outline(rounded, display)




def kernels_cached() -> bool:
    """Whether numba has the tracing kernels compiled in its cache (else the first use compiles them)."""
    if _numba is None:
        return True  # nothing to compile
    if _cache_dir is None:
        return False
    where = Path(_cache_dir) if _cache_dir else Path(__file__).resolve().parent / "__pycache__"
    return where.is_dir() and any(where.rglob("tracing*.nbi"))


def warm_up() -> None:
    """Compile the tracing kernels now (numba; later processes load them from the cache)."""
    img = np.full((16, 16), 255, np.uint8)
    img[3:12, 3:12] = 0
    img[6:9, 6:9] = 128
    trace_curves(img)
