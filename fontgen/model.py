"""The Zi2Zi model: a U-Net generator with a style embedding, and a two-headed PatchGAN.

Zi2Zi is pix2pix for glyphs. Image A is a glyph in the source font (the content); image B
is the same character in a target font (the style, identified by an integer style id).

Generator
    A U-Net with ``num_downs`` levels. Each encoder level halves the resolution with a
    4x4 stride-2 convolution; channels go ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... At 256 px the
    bottleneck is 1x1 (8 levels). The style id is looked up in ``nn.Embedding`` and the
    vector is broadcast over the bottleneck and concatenated to it; the decoder mirrors
    the encoder with skip connections. Output is tanh, in [-1, 1]. With ``style_film`` the
    style vector also scales and shifts each normalised decoder level (FiLM).

    ``G(x, labels, return_feat=True)`` also returns the bottleneck encoding (the encoder
    output *before* the style is concatenated); ``G.encode(x)`` computes just that, which
    is what the constancy loss needs for fake_B without running the decoder again.

Discriminator
    A conditional 70x70-style PatchGAN on concat(A, B) with two heads: per-patch real/fake
    logits, and style-category logits from a linear layer on globally pooled features.

Everything is plain convolutions and broadcasting: no Python loops over the batch, no
``.item()``, so it runs under bf16 autocast and in channels_last memory format.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize

from fontgen.errors import FontgenError

NORMS = ("instance", "batch")
ATTENTION_LEVEL = 4  # self-attention after the decoder level whose output is at 1/16 resolution


@dataclass
class ModelConfig:
    image_size: int = 256  # 64, 128, 256, 512 (or 192, 384: bottleneck 3x3 instead of 1x1)
    input_nc: int = 1
    ngf: int = 64
    ndf: int = 64
    embedding_num: int = 40  # number of style ids
    embedding_dim: int = 128
    norm: str = "instance"  # "instance" (affine=False) | "batch"
    self_attention: bool = False  # SAGAN-style block in the decoder at 1/16 resolution
    spectral_norm: bool = False  # in D (D then has no normalisation layers)
    dropout: float = 0.5  # in the inner 8ngf decoder blocks while training
    # zi2zi's innermost decoder block starts with a ReLU over concat(bottleneck, style), so every
    # negative style entry gets zero gradient forever (about half of each embedding never trains).
    # False: the ReLU acts on the bottleneck only and the style enters linearly. Checkpoints from
    # before this field load with True and draw as they did.
    style_relu: bool = False
    # zi2zi gives the style to the bottleneck only, so stroke width, serifs and terminals must be
    # carried up from 1x1 past skips that bring the source's own strokes. True: the style also
    # scales and shifts every normalised decoder level (FiLM, the AdaIN of FUNIT-style font
    # models), zero-initialised so training starts from the plain U-Net.
    style_film: bool = False

    def __post_init__(self):
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise FontgenError(f"image size must be an integer, got {size!r}")
        odd = size
        while odd % 2 == 0 and odd > 1:
            odd //= 2
        if not (64 <= size <= 512) or odd not in (1, 3):
            raise FontgenError(
                f"image size must be a power of two from 64 to 512 (or 192, 384), got {size}"
            )
        if self.norm not in NORMS:
            raise FontgenError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        for name in ("input_nc", "ngf", "ndf", "embedding_num", "embedding_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FontgenError(f"{name} must be a positive integer, got {value!r}")
        if not (0.0 <= float(self.dropout) < 1.0):
            raise FontgenError(f"dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def num_downs(self) -> int:
        """Number of stride-2 levels: log2(image_size) (8 at 256, 6 at 64); 7 at 384 (3x3)."""
        n, size = 0, self.image_size
        while size % 2 == 0:
            size //= 2
            n += 1
        return n

    @property
    def bottleneck_size(self) -> int:
        return self.image_size >> self.num_downs

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise FontgenError(f"unknown model config key(s): {', '.join(unknown)}")
        return cls(**{"style_relu": True, **d})  # written before style_relu existed: the old behaviour


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    return nn.BatchNorm2d(channels)


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * attention(x), gamma starts at 0 (identity at init)."""

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)  # [B, 1, N, C/8]
        k = self.key(x).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.value(x).flatten(2).transpose(1, 2).unsqueeze(1)  # [B, 1, N, C]
        out = F.scaled_dot_product_attention(q, k, v)  # fused kernel on GPU
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.gamma * out


class Generator(nn.Module):
    """U-Net generator with the style embedding concatenated at the bottleneck (and, with
    style_film, scaling and shifting every decoder level)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n, ngf, nc = config.num_downs, config.ngf, config.input_nc
        use_bias = config.norm != "batch"  # batch norm has its own shift
        ch = [ngf * min(2**i, 8) for i in range(n)]  # output channels of encoder level i

        # encoder: level 0 is a bare conv; levels 1..n-1 are LeakyReLU -> conv -> norm
        # (no norm at the innermost level: its output is the bottleneck, 1x1 at powers of two)
        down = [nn.Conv2d(nc, ch[0], 4, 2, 1)]
        for i in range(1, n):
            innermost = i == n - 1
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=use_bias or innermost)]
            if not innermost:
                layers.append(_norm(config.norm, ch[i]))
            down.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)

        self.embedding = nn.Embedding(config.embedding_num, config.embedding_dim)

        # decoder: up[i] maps resolution H/2^(i+1) -> H/2^i; its input is the bottleneck plus
        # style (i = n-1) or the previous decoder output concatenated with encoder skip i.
        up = []
        for i in range(n):
            in_ch = ch[i] + config.embedding_dim if i == n - 1 else 2 * ch[i]
            if i == 0:
                up.append(nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(in_ch, nc, 4, 2, 1), nn.Tanh()))
                continue
            # innermost: the ReLU moves onto the bottleneck alone (forward) unless style_relu; an
            # Identity keeps the layer indices, so state dicts of both kinds have the same keys
            first = nn.Identity() if i == n - 1 and not config.style_relu else nn.ReLU()
            layers = [first, nn.ConvTranspose2d(in_ch, ch[i - 1], 4, 2, 1, bias=use_bias),
                      _norm(config.norm, ch[i - 1])]
            # pix2pix: dropout in the inner 8ngf -> 8ngf decoder blocks (not the innermost)
            if 4 <= i < n - 1 and config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            up.append(nn.Sequential(*layers))
        self.up = nn.ModuleList(up)

        self.attention = SelfAttention(ch[ATTENTION_LEVEL - 1]) if config.self_attention else None
        # film[i - 1]: style -> (gamma, beta) for decoder level i's output (ch[i - 1] channels)
        self.film = nn.ModuleList(nn.Linear(config.embedding_dim, 2 * ch[i - 1]) for i in range(1, n)) \
            if config.style_film else None
        init_weights(self)
        for film in self.film or ():
            nn.init.zeros_(film.weight)

    def encode(self, x):
        """The bottleneck encoding of x (encoder only): [B, 8*ngf, s, s], s = 1 at powers of two."""
        for level in self.down:
            x = level(x)
        return x

    def style_from_weights(self, weights):
        """Blend styles: weights [B, embedding_num] (rows summing to 1) -> style vectors [B, embedding_dim]."""
        return weights.to(self.embedding.weight.dtype) @ self.embedding.weight

    def forward(self, x, labels=None, return_feat=False, style=None):
        if style is None:
            if labels is None:
                raise ValueError("Generator.forward needs labels or style")
            style = self.embedding(labels)
        skips = []
        h = x
        for level in self.down:
            h = level(h)
            skips.append(h)
        encoded = skips.pop()  # the bottleneck, before the style is concatenated
        s = style.to(encoded.dtype)[:, :, None, None].expand(-1, -1, encoded.shape[2], encoded.shape[3])
        h = torch.cat([encoded if self.config.style_relu else F.relu(encoded), s], dim=1)
        for i in reversed(range(len(self.up))):
            h = self.up[i](h)
            if self.film is not None and i > 0:
                gamma, beta = self.film[i - 1](style.to(h.dtype))[:, :, None, None].chunk(2, dim=1)
                h = h * (1 + gamma) + beta
            if i == ATTENTION_LEVEL and self.attention is not None:
                h = self.attention(h)
            if i > 0:
                h = torch.cat([skips[i - 1], h], dim=1)
        return (h, encoded) if return_feat else h


class Discriminator(nn.Module):
    """Conditional PatchGAN on concat(A, B) with a real/fake patch head and a category head."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        ndf, sn = config.ndf, config.spectral_norm
        use_norm = not sn  # SNGAN convention: spectral norm replaces normalisation layers
        use_bias = sn or config.norm != "batch"

        def block(c_in, c_out, stride, norm):
            layers = [nn.Conv2d(c_in, c_out, 4, stride, 1, bias=use_bias or not norm)]
            if norm:
                layers.append(_norm(config.norm, c_out))
            layers.append(nn.LeakyReLU(0.2))
            return nn.Sequential(*layers)

        self.body = nn.Sequential(
            block(2 * config.input_nc, ndf, 2, norm=False),
            block(ndf, 2 * ndf, 2, norm=use_norm),
            block(2 * ndf, 4 * ndf, 2, norm=use_norm),
        )
        # last feature layer (stride 1); the category head reads its conv output before
        # normalisation, because instance norm would erase the per-channel means it pools
        self.last_conv = nn.Conv2d(4 * ndf, 8 * ndf, 4, 1, 1, bias=use_bias or not use_norm)
        self.last_norm = _norm(config.norm, 8 * ndf) if use_norm else nn.Identity()
        self.patch_head = nn.Conv2d(8 * ndf, 1, 4, 1, 1)
        self.category_head = nn.Linear(8 * ndf, config.embedding_num)
        init_weights(self)
        if sn:  # wrap after init so the power iteration starts from the initialised weights
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.utils.parametrizations.spectral_norm(m)

    def forward(self, a, b):
        h = self.last_conv(self.body(torch.cat([a, b], dim=1)))
        category_logits = self.category_head(h.mean(dim=(2, 3)))
        patch_logits = self.patch_head(F.leaky_relu(self.last_norm(h), 0.2))
        return patch_logits, category_logits


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv/linear weights (zero bias); norm weights N(1, 0.02) (zero bias).

    The style embedding keeps PyTorch's N(0, 1) so that styles are distinct from step 0.
    Spectrally normalised layers have their underlying (original) weight initialised.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if parametrize.is_parametrized(m, "weight"):
                weight = m.parametrizations.weight.original
            else:
                weight = m.weight
            with torch.no_grad():
                nn.init.normal_(weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            with torch.no_grad():
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)


def build_models(config: ModelConfig) -> tuple[Generator, Discriminator]:
    """A freshly initialised (Generator, Discriminator) pair (both constructors initialise)."""
    return Generator(config), Discriminator(config)


def pick_device(want: str = "auto") -> torch.device:
    """auto -> CUDA when PyTorch sees a GPU, else the CPU; an explicit cuda without one is an error."""
    if want not in ("auto", "cpu", "cuda") and not want.startswith("cuda:"):
        raise FontgenError(f"--device must be auto, cpu or cuda, got {want!r}")
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise FontgenError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu")
    return torch.device(want)


def default_threads() -> int:
    """CPU threads for torch: every core but one.

    PyTorch's OpenMP threads spin-wait for each other; when another process holds a core
    they wait for it, and a step collapses (measured on 2 cores with one busy process:
    2 threads 0.98 s per step, 1 thread 0.19 s; quiet: 0.075 s and 0.12 s). Leaving a core
    free costs a little on a quiet machine and saves the run on a busy one.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX tiles or AVX512-BF16).

    There bf16 autocast with channels_last makes a CPU training step faster (docs/benchmarks.md);
    elsewhere oneDNN emulates bf16 and training stays fp32 (the cpu preset's step with oneDNN held
    to AVX2, ONEDNN_MAX_CPU_ISA=AVX2: fp32 137 ms, bf16 645 ms).
    """
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(torch.cpu, probe, None)  # private probes: absent in some torch builds
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # pragma: no cover - a probe that cannot run on this build
            continue
    return False


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads (None: default_threads()) and return the number in use."""
    if threads is not None and threads < 1:
        raise FontgenError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads or default_threads())
    return torch.get_num_threads()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
