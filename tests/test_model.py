"""Generator / Discriminator: shapes, options, init, style blending. Tiny sizes (CPU)."""

import pytest
import torch
import torch.nn as nn

from fontgen.errors import FontgenError
from fontgen.model import (
    Discriminator,
    Generator,
    ModelConfig,
    build_models,
    count_parameters,
    init_weights,
)


def tiny(**kw):
    base = dict(image_size=64, ngf=8, ndf=8, embedding_num=5, embedding_dim=16)
    base.update(kw)
    return ModelConfig(**base)


def images(b, size, nc=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, nc, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("size,ngf", [(64, 16), (128, 8), (256, 8)])
def test_generator_and_discriminator_shapes(size, ngf):
    cfg = tiny(image_size=size, ngf=ngf, ndf=8)
    assert cfg.num_downs == {64: 6, 128: 7, 256: 8}[size]
    G, D = build_models(cfg)
    x = images(2, size)
    labels = torch.tensor([0, 4])
    fake = G(x, labels)
    assert fake.shape == x.shape
    assert fake.min() >= -1 and fake.max() <= 1  # tanh
    fake2, encoded = G(x, labels, return_feat=True)
    assert encoded.shape == (2, 8 * ngf, 1, 1)  # bottleneck, before the style is concatenated
    patch, cat = D(x, fake)
    assert cat.shape == (2, cfg.embedding_num)
    assert patch.dim() == 4 and patch.shape[:2] == (2, 1) and patch.shape[2] > 1


def test_encode_equals_return_feat_encoding():
    G = Generator(tiny()).eval()
    x = images(3, 64)
    _, encoded = G(x, torch.tensor([0, 1, 2]), return_feat=True)
    torch.testing.assert_close(G.encode(x), encoded)
    # the encoding does not depend on the style
    _, encoded_other = G(x, torch.tensor([3, 3, 3]), return_feat=True)
    torch.testing.assert_close(encoded_other, encoded)


def test_style_blending_one_hot_equals_labels_and_styles_matter():
    G = Generator(tiny()).eval()
    x = images(2, 64)
    labels = torch.tensor([1, 3])
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    by_label = G(x, labels)
    by_style = G(x, style=G.style_from_weights(one_hot))
    torch.testing.assert_close(by_style, by_label)
    torch.testing.assert_close(G(x, style=G.embedding.weight[labels]), by_label)
    # a 50/50 blend is a different output from either style
    blend = G(x, style=G.style_from_weights(torch.full((2, 5), 0.0).index_fill_(1, torch.tensor([1, 3]), 0.5)))
    assert not torch.allclose(blend, by_label)
    assert not torch.allclose(G(x, torch.tensor([0, 0])), G(x, torch.tensor([4, 4])))


def test_generator_needs_labels_or_style():
    G = Generator(tiny())
    with pytest.raises(ValueError):
        G(images(1, 64))


def test_init_statistics():
    torch.manual_seed(0)
    G, D = build_models(tiny(ngf=16, ndf=16, norm="batch"))
    big = [m.weight for m in list(G.modules()) + list(D.modules())
           if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and m.weight.numel() > 4000]
    assert len(big) > 5
    for w in big:
        assert abs(w.mean().item()) < 0.003
        assert 0.017 < w.std().item() < 0.023
    norms = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms
    weights = torch.cat([m.weight.detach() for m in norms])
    assert abs(weights.mean().item() - 1) < 0.01 and 0.01 < weights.std().item() < 0.03
    assert all(m.bias is None or torch.count_nonzero(m.bias) == 0
               for m in G.modules() if isinstance(m, nn.Conv2d))
    # init_weights re-initialises an arbitrary module
    lin = nn.Linear(200, 200)
    init_weights(lin)
    assert 0.018 < lin.weight.std().item() < 0.022


def test_dropout_only_in_train_mode():
    G = Generator(tiny())
    assert any(isinstance(m, nn.Dropout) for m in G.modules())
    x, labels = images(2, 64), torch.tensor([0, 1])
    G.eval()
    torch.testing.assert_close(G(x, labels), G(x, labels))
    G.train()
    torch.manual_seed(1)
    a = G(x, labels)
    torch.manual_seed(2)
    b = G(x, labels)
    assert not torch.allclose(a, b)
    # dropout=0 removes it
    G0 = Generator(tiny(dropout=0.0)).train()
    assert not any(isinstance(m, nn.Dropout) for m in G0.modules())
    torch.testing.assert_close(G0(x, labels), G0(x, labels))


@pytest.mark.parametrize("norm,cls", [("instance", nn.InstanceNorm2d), ("batch", nn.BatchNorm2d)])
def test_norm_options(norm, cls):
    G, D = build_models(tiny(norm=norm))
    assert any(isinstance(m, cls) for m in G.modules())
    assert any(isinstance(m, cls) for m in D.modules())
    other = nn.BatchNorm2d if cls is nn.InstanceNorm2d else nn.InstanceNorm2d
    assert not any(isinstance(m, other) for m in G.modules())
    if norm == "instance":
        assert all(not m.affine for m in G.modules() if isinstance(m, nn.InstanceNorm2d))
    x = images(2, 64)
    out = G(x, torch.tensor([0, 1]))
    out.mean().backward()
    grads = {name: p.grad for name, p in G.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # every layer learns (the embedding rows of styles 0 and 1 at least), nothing is cut off by the norm
    assert all(g.abs().sum() > 0 for name, g in grads.items() if name != "embedding.weight")
    assert (grads["embedding.weight"][:2] != 0).all() and (grads["embedding.weight"][2:] == 0).all()


def test_self_attention_and_spectral_norm_run_and_train():
    cfg = tiny(self_attention=True, spectral_norm=True)
    G, D = build_models(cfg)
    assert G.attention is not None
    assert count_parameters(G) > count_parameters(Generator(tiny()))
    sn = [m for m in D.modules() if hasattr(m, "parametrizations")]
    assert len(sn) >= 5
    x = images(2, 64)
    fake = G(x, torch.tensor([0, 1]))
    patch, cat = D(x, fake)
    (patch.mean() + cat.mean()).backward()
    assert G.attention.gamma.grad is not None
    # spectral norm keeps D's largest singular value near 1 after a few power iterations
    for _ in range(10):
        D(x, fake.detach())
    w = D.patch_head.weight.flatten(1)
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_config_validation_and_round_trip():
    cfg = tiny(norm="batch", self_attention=True)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(FontgenError):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    for bad in (dict(image_size=100), dict(image_size=32), dict(image_size=1024), dict(norm="layer")):
        with pytest.raises(FontgenError):
            ModelConfig(**bad)
    assert ModelConfig().num_downs == 8 and ModelConfig(image_size=512).num_downs == 9
    assert ModelConfig(image_size=384).num_downs == 7  # bottleneck 3x3


def test_384_has_3x3_bottleneck():
    G, D = build_models(tiny(image_size=384, ngf=4, ndf=4))
    x = images(1, 384)
    fake, enc = G(x, torch.tensor([2]), return_feat=True)
    assert fake.shape == x.shape and enc.shape[2:] == (3, 3)


def test_channels_last_and_bf16_autocast():
    """Both speed options give the fp32 NCHW numbers: channels_last to float precision, bf16 within its own."""
    G, D = build_models(tiny())
    G.eval()  # no dropout: the same network every pass
    x, labels = images(2, 64), torch.tensor([0, 1])
    with torch.no_grad():
        fake32 = G(x, labels)
        patch32, _ = D(x, fake32)
        Gc, Dc = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        fake_cl = Gc(xc, labels)
        torch.testing.assert_close(fake_cl, fake32, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(Dc(xc, fake_cl)[0], patch32, atol=1e-5, rtol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fake, enc = Gc(xc, labels, return_feat=True)
            patch, cat = Dc(xc, fake)
    assert fake.shape == x.shape and torch.isfinite(patch.float()).all()
    assert (fake.float() - fake32).abs().mean() < 0.02 * fake32.abs().mean() + 1e-3  # measured: 0.0006 vs 0.052
    assert (patch.float() - patch32).abs().mean() < 0.03 * patch32.abs().mean()  # measured: 0.003 vs 0.33


def test_default_parameter_counts():
    """256 px, ngf 64: the pix2pix U-Net (54.4 M) plus the 128-d style concat at the bottleneck."""
    with torch.device("meta"):
        G = Generator(ModelConfig())
        D = Discriminator(ModelConfig())
    assert 55_000_000 < count_parameters(G) < 56_000_000
    assert 2_700_000 < count_parameters(D) < 2_900_000


def test_every_style_embedding_entry_gets_gradient():
    """zi2zi's ReLU over concat(bottleneck, style) zeroes the gradient of every negative style entry."""
    torch.manual_seed(0)
    x = torch.rand(4, 1, 64, 64) * 2 - 1
    labels = torch.tensor([0, 1, 2, 3])
    for style_relu in (False, True):
        G = Generator(ModelConfig(image_size=64, ngf=8, ndf=8, embedding_num=5, embedding_dim=16,
                                  style_relu=style_relu))
        G(x, labels).square().mean().backward()
        grad = G.embedding.weight.grad[labels]
        negative = G.embedding.weight[labels] < 0
        if style_relu:  # the old layout: exactly the negative entries are dead
            assert negative.any() and (grad[negative] == 0).all() and (grad[~negative] != 0).all()
        else:
            assert (grad != 0).all()  # every entry of every used style learns


def test_checkpoints_without_style_relu_keep_the_old_behaviour():
    old = ModelConfig(image_size=64, ngf=8).to_dict()
    del old["style_relu"]
    assert ModelConfig.from_dict(old).style_relu is True
    assert ModelConfig().style_relu is False


def test_style_film_starts_as_the_plain_unet_and_then_styles_every_decoder_level():
    torch.manual_seed(0)
    film = Generator(tiny(style_film=True)).eval()
    plain = Generator(tiny()).eval()
    missing, unexpected = plain.load_state_dict(film.state_dict(), strict=False)
    assert not missing and unexpected and all(k.startswith("film.") for k in unexpected)
    x, labels = images(3, 64), torch.tensor([0, 1, 2])
    with torch.no_grad():
        assert torch.equal(film(x, labels), plain(x, labels))  # zero-initialised: training starts from zi2zi
        for G in (film, plain):  # cut the style out of the bottleneck
            G.up[-1][1].weight[-G.config.embedding_dim:] = 0
        for layer in film.film:
            layer.weight.normal_(0, 0.5)
        two_styles = x[:1].repeat(2, 1, 1, 1), torch.tensor([0, 1])
        assert torch.equal(*plain(*two_styles))  # the plain U-Net has no other way in for the style
        assert not torch.allclose(*film(*two_styles))  # FiLM brings it to the decoder levels themselves
    assert len(film.film) == film.config.num_downs - 1
    old = tiny().to_dict()
    del old["style_film"]
    assert ModelConfig.from_dict(old).style_film is False  # checkpoints from before it draw as they did


def test_style_film_gets_gradient():
    G = Generator(tiny(style_film=True))
    G(images(2, 64), torch.tensor([0, 1])).square().mean().backward()
    assert all(layer.weight.grad.abs().sum() > 0 for layer in G.film)
