"""Zi2Zi losses, with the review fixes of DESIGN.md ("The model (Zi2Zi, as reviewed)").

Generator:     gan * BCE(D(A, fake), real)           non-saturating, with the current D  (fix 6)
             + l1 * mean(w * |fake - B|)   w = 1, or 1 + stroke * ink + gap * narrow gap (see pixel_l1)
             + const * MSE(pool(enc(A)), pool(enc(fake)))   pooled to vectors             (fix 7)
             + category * CE(D_cat(A, fake), style)          same weight as in D          (fix 5)
             + perceptual * sum_l w_l |vgg_l(fake) - vgg_l(B)|   relu1_2 + relu2_2 only  (fixes 1, 2, 4)
Discriminator: 0.5 * gan * (BCE(D(A, B), real) + BCE(D(A, fake), fake))
             + category * (CE(D_cat(A, B), style) + CE(D_cat(A, fake), style))             (fix 5)

Default weights (fix 3): GAN 1, L1 100, const 5, perceptual 0.02, category 1.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

import torch
import torch.nn as nn
import torch.nn.functional as F

from fontgen.errors import FontgenError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """L1 between low VGG16 features of fake and real glyphs (fix 1), placed once (fix 4).

    ``features`` is a VGG16 ``features`` Sequential (see :func:`vgg16_features`). Only
    its layers up to ``max(layers)`` are kept. ``layers`` are indices into it: the
    default (3, 8) is relu1_2 and relu2_2. Inputs are glyph images in [-1, 1] with 1 or
    3 channels: they are mapped to [0, 1], repeated to 3 channels and normalised with
    the ImageNet mean/std (registered buffers). The VGG is frozen and always in eval mode.
    The whole module is moved to ``device`` here, once; forward never moves anything.
    """

    def __init__(self, features: nn.Sequential, layers=(3, 8), layer_weights=None, device="cpu"):
        super().__init__()
        layers = tuple(int(i) for i in layers)
        if not layers or list(layers) != sorted(set(layers)):
            raise ValueError(f"layers must be increasing feature indices, got {layers}")
        if layers[0] < 0 or layers[-1] >= len(features):
            raise ValueError(f"layer index out of range for a {len(features)}-layer VGG: {layers}")
        if layer_weights is None:
            layer_weights = (1.0,) * len(layers)
        layer_weights = tuple(float(w) for w in layer_weights)
        if len(layer_weights) != len(layers):
            raise ValueError("layer_weights must have one weight per layer")
        self.layers = layers
        self.layer_weights = layer_weights
        # keep only what is needed; replace in-place ReLUs so a captured activation is never
        # overwritten by the next layer
        kept = [nn.ReLU() if isinstance(m, nn.ReLU) else m for m in list(features)[: layers[-1] + 1]]
        self.vgg = nn.Sequential(*kept)
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.to(device)
        self.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.vgg.eval()  # frozen feature extractor: always eval
        return self

    def normalize(self, x):
        """[-1, 1] glyphs -> ImageNet-normalised 3-channel input."""
        x = (x + 1) * 0.5
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def _features(self, x):
        feats = []
        h = self.normalize(x)
        for i, layer in enumerate(self.vgg):
            h = layer(h)
            if i in self.layers:
                feats.append(h)
        return feats

    def forward(self, fake, real):
        # fp32 even under bf16 autocast: the low layers see fine stroke edges, and the L1 of
        # small feature differences is what this loss is made of
        with torch.autocast(device_type=fake.device.type, enabled=False):
            fake, real = fake.float(), real.float()
            fake_feats = self._features(fake)
            with torch.no_grad():
                real_feats = self._features(real)
            loss = fake.new_zeros((), dtype=torch.float32)
            for w, f, r in zip(self.layer_weights, fake_feats, real_feats):
                loss = loss + w * F.l1_loss(f, r)
        return loss


def _vgg16_cache_path() -> tuple[str, str]:
    from torchvision.models import VGG16_Weights

    url = VGG16_Weights.IMAGENET1K_V1.url
    filename = os.path.basename(urlparse(url).path)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename), url


def _load_features_state(path: str) -> dict:
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FontgenError(f"VGG weights file not found: {path}") from None
    except Exception as e:  # unpickling refused, corrupt file, missing safetensors package
        raise FontgenError(f"cannot read VGG weights {path}: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FontgenError(f"VGG weights {path} is not a state dict")
    out = {}
    for key, value in state.items():
        if key.startswith("classifier."):
            continue  # a full VGG16 state dict: only `features` is used
        if key.startswith("features."):
            key = key[len("features."):]
        out[key] = value
    return out


def _vgg16_feature_layers() -> nn.Sequential:
    """torchvision's ``vgg16().features`` (same layers, same keys, same init) without
    building the 120M-parameter classifier."""
    from torchvision.models.vgg import cfgs, make_layers

    features = make_layers(cfgs["D"], batch_norm=False)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):  # as torchvision's VGG._initialize_weights
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return features


def vgg16_features(weights_path=None, pretrained=True) -> nn.Sequential:
    """torchvision's VGG16 ``features``, with weights from a file or torchvision's cache.

    weights_path: a state dict in torchvision's layout ("0.weight", ... or "features.0.weight";
    a whole VGG16 state dict works too), read with ``torch.load(weights_only=True)`` (or
    safetensors for *.safetensors). Otherwise, with pretrained=True, the ImageNet weights
    (VGG16_Weights.IMAGENET1K_V1) from torchvision's cache under TORCH_HOME, which is never
    downloaded to: if the file is absent this raises FontgenError naming where to put it.
    pretrained=False gives randomly initialised weights (tests only).
    """
    features = _vgg16_feature_layers()
    if weights_path is not None:
        path = os.fspath(weights_path)
    elif pretrained:
        path, url = _vgg16_cache_path()
        if not os.path.isfile(path):
            raise FontgenError(
                f"pretrained VGG16 weights for the perceptual loss are not available offline: "
                f"put {os.path.basename(path)} (from {url}) at {path}, "
                f"or pass --vgg-weights PATH, or --perceptual-weight 0"
            )
    else:
        return features
    state = _load_features_state(path)
    try:
        features.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(line.strip() for line in str(e).strip().splitlines()[1:3])
        raise FontgenError(f"{path} is not a VGG16 `features` state dict: {detail or e}") from None
    return features


def constancy_loss(encoded_a, encoded_b):
    """MSE between globally average-pooled bottleneck encodings (fix 7): any spatial sizes."""
    a = F.adaptive_avg_pool2d(encoded_a, 1).flatten(1) if encoded_a.dim() == 4 else encoded_a.flatten(1)
    b = F.adaptive_avg_pool2d(encoded_b, 1).flatten(1) if encoded_b.dim() == 4 else encoded_b.flatten(1)
    return F.mse_loss(a.float(), b.float())


@dataclass
class LossWeights:
    gan: float = 1.0
    l1: float = 100.0
    const: float = 5.0
    perceptual: float = 0.02
    category: float = 1.0
    stroke: float = 0.0  # extra L1 weight on ink pixels (pixel_l1); 0: plain L1
    gap: float = 0.0  # extra L1 weight on the paper of narrow gaps between strokes (pixel_l1)
    iou: float = 0.0  # soft IoU of the ink per glyph (soft_iou_loss); 0: off


def narrow_gaps(real) -> torch.Tensor:
    """The paper of glyph images in [-1, 1] that a closing of their ink fills, in [0, 1]: gaps between
    strokes at most ~2 px wide per 64 px of image (the closing's square is 3 px at 64, 5 at 128),
    where a soft drawing closes up first."""
    ink = ((1 - real.float()) * 0.5).clamp(0, 1)
    r = max(1, real.shape[-1] // 64)
    closed = -F.max_pool2d(-F.max_pool2d(ink, 2 * r + 1, 1, r), 2 * r + 1, 1, r)
    return (closed - ink).clamp(0, 1)


def pixel_l1(fake, real, stroke: float = 0.0, gap: float = 0.0):
    """Mean L1 between glyph images in [-1, 1] (-1 = ink), with ink pixels and narrow gaps weighted up.

    Every pixel weighs 1 + stroke * ink, ink = max(ink of the real glyph, ink of the
    (detached) generated glyph), each in [0, 1] ((1 - x) / 2). Plain L1 (stroke 0) charges a
    missing 1-px stroke or a 2-px break in a thin horizontal almost nothing next to the
    paper around it; weighting the real glyph's ink makes every stroke pixel the generator
    leaves out cost 1 + stroke times as much, and weighting the generated glyph's ink does
    the same for stray ink (blots, strokes merged across a gap). The paper of the real glyph's
    narrow gaps (`narrow_gaps`) weighs 1 + gap more: two close strokes a soft drawing joins
    cost little more than one stray pixel each, yet the merged glyph is what a reader sees.
    Other paper weighs 1, so the L1 weight keeps its meaning (fix 3), and stroke 0 with gap 0 is
    exactly F.l1_loss.
    """
    fake, real = fake.float(), real.float()
    if not stroke and not gap:
        return F.l1_loss(fake, real)
    weight = 1 + stroke * torch.maximum(1 - real, 1 - fake.detach()).clamp(0, 2) * 0.5
    if gap:
        weight = weight + gap * narrow_gaps(real)
    return (weight * (fake - real).abs()).mean()


def soft_iou_loss(fake, real):
    """1 - soft IoU of the ink ((1 - x) / 2 in [0, 1]) of each glyph, averaged over the batch.

    Every glyph weighs the same however little ink it has: where L1 charges a broken hairline
    next to nothing, here the hairline style's glyph counts as much as a black one. It is the
    display-size IoU the product is judged by, made differentiable. Two empty glyphs cost 0.
    """
    p = ((1 - fake.float()) * 0.5).clamp(0, 1).flatten(1)
    t = ((1 - real.float()) * 0.5).clamp(0, 1).flatten(1)
    inter = (p * t).sum(1)
    union = (p + t - p * t).sum(1)
    iou = torch.where(union > 1e-6, inter / union.clamp_min(1e-6), torch.ones_like(union))
    return (1 - iou).mean()


def _bce(logits, target_is_real: bool):
    logits = logits.float()
    target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def _ce(logits, labels):
    return F.cross_entropy(logits.float(), labels)


def discriminator_loss(D, real_a, real_b, fake_b, labels, weights: LossWeights, batched: bool = True):
    """(loss, parts) for the D step; fake_b is detached here.

    loss = 0.5 * gan * (bce_real + bce_fake) + category * (ce_real + ce_fake)   (fix 5)
    parts (detached): "gan" (the weighted adversarial term), "real", "fake" (raw BCEs),
    "category" (the weighted category term).

    batched: real and fake pairs go through D as one batch: one forward per backward (what
    DDP expects) and half the kernel launches. That equals two passes whenever D normalises
    per sample (instance norm, spectral norm, none); with batch norm pass False, since the
    batch statistics would then mix real and fake.
    """
    if batched:
        n = real_a.shape[0]
        patch, cat = D(torch.cat([real_a, real_a]), torch.cat([real_b, fake_b.detach()]))
        real_patch, fake_patch, real_cat, fake_cat = patch[:n], patch[n:], cat[:n], cat[n:]
    else:
        real_patch, real_cat = D(real_a, real_b)
        fake_patch, fake_cat = D(real_a, fake_b.detach())
    bce_real = _bce(real_patch, True)
    bce_fake = _bce(fake_patch, False)
    gan = 0.5 * (bce_real + bce_fake) * weights.gan
    category = weights.category * (_ce(real_cat, labels) + _ce(fake_cat, labels))
    loss = gan + category
    parts = {
        "gan": gan.detach(),
        "real": bce_real.detach(),
        "fake": bce_fake.detach(),
        "category": category.detach(),
    }
    return loss, parts


@contextmanager
def _batch_stats_frozen(module: nn.Module):
    """Batch norm keeps normalising with batch statistics, but its running statistics stay put
    (momentum 0) while the block runs; no-op for instance norm."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


def generator_loss(G, D, real_a, real_b, fake_b, encoded_a, labels, weights: LossWeights,
                   perceptual=None, const_target="fake", use_perceptual=True):
    """(loss, parts) for the G step.

    D should be the freshly updated discriminator (fix 6); its parameters receive
    gradients from this loss too, so zero D's gradients before its next step.
    const_target: "fake" compares encoder(A) with encoder(fake_B) (zi2zi; fake_B stays in
    the graph); "real" compares with encoder(B), which ignores the output (for comparison).
    parts (detached, weighted): "gan", "l1", "const", "category", "perceptual", "iou".
    """
    if const_target not in ("fake", "real"):
        raise ValueError(f"const_target must be 'fake' or 'real', got {const_target!r}")
    fake_patch, fake_cat = D(real_a, fake_b)
    gan = weights.gan * _bce(fake_patch, True)  # non-saturating: -log sigmoid(D(A, fake))
    l1 = weights.l1 * pixel_l1(fake_b, real_b, weights.stroke, weights.gap)
    zero = l1.new_zeros(())
    if weights.const:
        with _batch_stats_frozen(G):  # an extra pass over generated glyphs must not move BN running stats
            encoded_b = G.encode(fake_b if const_target == "fake" else real_b)
        const = weights.const * constancy_loss(encoded_a, encoded_b)
    else:
        const = zero
    category = weights.category * _ce(fake_cat, labels)
    iou = weights.iou * soft_iou_loss(fake_b, real_b) if weights.iou else zero
    if perceptual is not None and use_perceptual and weights.perceptual > 0:
        perc = weights.perceptual * perceptual(fake_b, real_b)
    else:
        perc = zero
    loss = gan + l1 + const + category + perc + iou
    parts = {
        "gan": gan.detach(),
        "l1": l1.detach(),
        "const": const.detach(),
        "category": category.detach(),
        "perceptual": perc.detach(),
        "iou": iou.detach(),
    }
    return loss, parts
