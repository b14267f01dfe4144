"""Align the drawings of several source fonts before averaging them.

A model with several source fonts draws each character once from each (generate.Generation.run)
and the drawings are averaged. Where the drawings disagree about where a stroke lies, the pixel
mean holds two half-grey copies of it a few pixels apart; traced at the 50% level they become
one lumpy stroke, a blob, or a stroke in pieces (the 200 px look of round 6 in
docs/benchmarks.md). Here each drawing is first moved onto the others by a small smooth
displacement field, then averaged: the strokes meet at their mean position as one stroke.

The fit: every drawing gets a displacement field on a coarse grid (GRID x GRID control points,
bilinear in between, at most MAX_SHIFT of the image size, so it moves strokes and never draws
new ones), found by a few Adam steps that bring the slightly blurred drawing onto the blurred
weighted mean of all of them, with a smoothness penalty. It runs at FIT_SIZE px and the field is
then applied to the full-size drawings. 13-26 ms a glyph for four 128 px drawings on one CPU
core (docs/benchmarks.md, round 7).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

FIT_SIZE = 64  # px at which the displacement is fitted (the drawings are area-downsampled to it)
GRID = 8  # control points per side of the displacement field
STEPS = 20  # Adam steps
LEARNING_RATE = 0.15
MAX_SHIFT = 1 / 32  # of the image size: 4 px at 128 px
SMOOTHNESS = 1.0  # weight of the squared differences between neighbouring control points
BLUR = 1 / 128  # of the image size: the Gaussian sigma the fit compares at (it sees strokes 1 px off)


def _warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample x [N, 1, H, W] at the identity grid plus flow [N, 2, g, g] (normalised units)."""
    n, _, h, w = x.shape
    line = lambda k: torch.linspace(-1, 1, k, device=x.device, dtype=x.dtype)  # noqa: E731
    ys, xs = torch.meshgrid(line(h), line(w), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1)[None] + F.interpolate(flow, size=(h, w), mode="bilinear",
                                                              align_corners=True).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, round(2 * sigma))
    taps = torch.exp(-torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) ** 2 / (2 * sigma * sigma))
    taps = taps / taps.sum()
    x = F.conv2d(x, taps.view(1, 1, 1, -1), padding=(0, radius))
    return F.conv2d(x, taps.view(1, 1, -1, 1), padding=(radius, 0))


def aligned_mean(ink: torch.Tensor, weights: list[float]) -> torch.Tensor:
    """The weighted mean of V drawings of each glyph after moving each onto the others.

    ink: [V, N, H, W], 0 = paper, 1 = ink (float). weights: V non-negative numbers.
    Returns [N, H, W]. One drawing is returned as it is.
    """
    views, count, size = ink.shape[0], ink.shape[1], ink.shape[-1]
    if views == 1 or count == 0:
        return ink[0].clone()
    w = torch.tensor(weights, dtype=ink.dtype, device=ink.device).view(-1, 1, 1, 1, 1)
    full = ink.unsqueeze(2)  # [V, N, 1, H, W]
    fit = min(FIT_SIZE, size)
    small = F.interpolate(ink, size=(fit, fit), mode="area") if fit < size else ink
    # blurred before warping, not after: a blur commutes with a small smooth warp, and the fit then
    # has no convolution to differentiate through (7x faster)
    small = _blur(small.reshape(views * count, 1, fit, fit), BLUR * fit).view(views, count, 1, fit, fit)
    template = (small * w).sum(0) / w.sum()
    limit = 2 * MAX_SHIFT  # normalised coordinates span 2
    raw = torch.zeros(views, count, 2, GRID, GRID, device=ink.device, requires_grad=True)
    optimizer = torch.optim.Adam([raw], lr=LEARNING_RATE)
    with torch.enable_grad():
        for _ in range(STEPS):
            flow = limit * torch.tanh(raw)
            moved = _warp(small.reshape(views * count, 1, fit, fit), flow.reshape(views * count, 2, GRID, GRID))
            loss = ((moved.view(views, count, 1, fit, fit) - template) ** 2).mean() * views
            loss = loss + SMOOTHNESS * (((flow[..., 1:] - flow[..., :-1]) ** 2).mean()
                                        + ((flow[..., 1:, :] - flow[..., :-1, :]) ** 2).mean())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        flow = (limit * torch.tanh(raw)).reshape(views * count, 2, GRID, GRID)
        moved = _warp(full.reshape(views * count, 1, size, size), flow).view(views, count, 1, size, size)
        return ((moved * w).sum(0) / w.sum())[:, 0]
