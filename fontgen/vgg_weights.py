"""Offline VGG16 filters for the perceptual loss, converted from the stlpips-pytorch package.

Machines without internet cannot fetch torchvision's ImageNet VGG16 weights. The PyPI
package ``stlpips-pytorch`` (Shift-tolerant LPIPS, Ghildyal & Liu, ECCV 2022; BSD-2)
ships ``weights/vST0.0/vgg_shift_tolerant.pth``, the state dict of a whole LPIPS model:

    scaling_layer.shift/scale   LPIPS input scaling; identical to ImageNet mean/std
                                normalisation of [0, 1] images (shift = 2*mean - 1,
                                scale = 2*std), i.e. what PerceptualLoss does
    net.sliceK.N.weight/bias    13 VGG16 3x3 convs with exactly torchvision's shapes
    net.sliceK.N.filt           fixed [1,2,1]x[1,2,1] blur filters (anti-aliased pooling)
    linK.model.1.weight         LPIPS per-channel linear calibration (not used here)

Its network interleaves MaxPool(2, stride 1) + blur-downsample layers where torchvision
has MaxPool(2, stride 2), so the conv indices are shifted (0, 2, 6, 8, 12, ... instead
of 0, 2, 5, 7, 10, ...). :func:`convert_stlpips_vgg` maps the 13 convs, in order, onto
torchvision's ``features`` indices and writes a plain state dict that
``fontgen.losses.vgg16_features(weights_path=...)`` (and ``--vgg-weights``) loads.

What these filters are (measured, see the report of this module's author): not ImageNet
features. The convs were trained for the LPIPS perceptual-similarity task starting from a
Kaiming-normal init, and stayed close to it: every layer's weight std is within ~10 % of
the Kaiming fan-out std, the weight distributions are Gaussian (kurtosis ~3), and the first
layer's filters show no edge/colour-opponent structure. They are "lightly trained random
features": usable as a fixed multi-scale feature L1 for glyphs at a small weight, not an
equivalent of ImageNet VGG16. Also, relu1_2 (index 3) is computed exactly as in the model
they came from, but relu2_2 (index 8) follows a plain stride-2 max pool here instead of
the blur pool they were trained behind.

    python -m fontgen.vgg_weights IN.pth OUT.pth
    python -m fontgen.vgg_weights stlpips OUT.pth    # IN taken from the installed package
"""

from __future__ import annotations

import os
import re
import sys

import torch

from fontgen.errors import FontgenError

# torchvision VGG16 `features` indices of the 13 convolutions
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
# (out_channels, in_channels) of those convolutions, all 3x3
VGG16_CONV_CHANNELS = (
    (64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
    (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512),
)
_CONV_KEY = re.compile(r"^(?:net\.)?slice\d+\.(\d+)\.weight$")


def find_stlpips_vgg() -> str | None:
    """Path of vgg_shift_tolerant.pth in an installed stlpips-pytorch, or None."""
    import importlib.util

    spec = importlib.util.find_spec("stlpips_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "weights", "vST0.0", "vgg_shift_tolerant.pth")
        if os.path.isfile(path):
            return path
    return None


def convert_stlpips_state(state: dict) -> dict:
    """Map an stlpips VGG state dict onto torchvision's VGG16 ``features`` keys."""
    convs = []
    for key, value in state.items():
        m = _CONV_KEY.match(key)
        if m and value.dim() == 4:
            convs.append((int(m.group(1)), key))
    convs.sort()
    if len(convs) != len(TORCHVISION_CONV_INDICES):
        raise FontgenError(f"expected 13 VGG16 conv layers, found {len(convs)}")
    out = {}
    for (_, key), tv_index, (c_out, c_in) in zip(convs, TORCHVISION_CONV_INDICES, VGG16_CONV_CHANNELS):
        weight = state[key]
        bias = state.get(key[: -len("weight")] + "bias")
        if tuple(weight.shape) != (c_out, c_in, 3, 3) or bias is None or tuple(bias.shape) != (c_out,):
            raise FontgenError(
                f"{key} has shape {tuple(weight.shape)}, not VGG16's {(c_out, c_in, 3, 3)} (with a bias)"
            )
        out[f"{tv_index}.weight"] = weight.detach().float().contiguous().clone()
        out[f"{tv_index}.bias"] = bias.detach().float().contiguous().clone()
    return out


def convert_stlpips_vgg(path_in, path_out) -> dict:
    """Convert stlpips' vgg_shift_tolerant.pth to a torchvision-layout ``features`` state dict.

    Reads with ``torch.load(weights_only=True)``, checks all 13 conv shapes, writes the
    tensors with ``torch.save`` (plain dict of tensors, atomically) and returns the dict.
    """
    try:
        state = torch.load(os.fspath(path_in), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FontgenError(f"file not found: {path_in}") from None
    except Exception as e:
        raise FontgenError(f"cannot read {path_in}: {e}") from None
    if not isinstance(state, dict):
        raise FontgenError(f"{path_in} is not a state dict")
    out = convert_stlpips_state(state)
    path_out = os.fspath(path_out)
    tmp = path_out + ".tmp"
    torch.save(out, tmp)
    os.replace(tmp, path_out)
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m fontgen.vgg_weights IN.pth|stlpips OUT.pth", file=sys.stderr)
        return 2
    path_in, path_out = argv
    try:
        if path_in == "stlpips":
            path_in = find_stlpips_vgg()
            if path_in is None:
                raise FontgenError("stlpips-pytorch is not installed (pip install stlpips-pytorch --no-deps)")
        out = convert_stlpips_vgg(path_in, path_out)
    except FontgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = sum(t.numel() for t in out.values())
    print(f"wrote {path_out}: 13 VGG16 convs, {n:,} parameters (use --vgg-weights {path_out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
