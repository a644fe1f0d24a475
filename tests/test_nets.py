import pytest
import torch

from deepprior.errors import ConfigError
from deepprior.nets import NETS, build_net, make_code
from deepprior.params import DIP


def test_skip_reference_parameter_count():
    net = build_net("skip", 32, 3, channels_down=[128] * 5, channels_up=[128] * 5, channels_skip=[4] * 5)
    assert net.num_parameters() == 2_217_831


def test_skip_variants_parameter_counts():
    # No skip branch drops its conv (+BN) and shrinks the concat BN: counts must differ accordingly.
    a = build_net("skip", 32, 3, channels_skip=[4] * 5)
    b = build_net("skip", 32, 3, channels_skip=[0, 4, 4, 4, 4])
    skip_conv = 32 * 4 + 4  # 1×1 conv 32→4 with bias
    skip_bn = 2 * 4  # BN affine of the skip branch
    cat_bn = 2 * 4  # the concat BN loses 4 channels
    up_conv = 4 * 128 * 9  # the up conv loses 4 input channels
    assert a.num_parameters() - b.num_parameters() == skip_conv + skip_bn + cat_bn + up_conv
    c = build_net("skip", 32, 3, need1x1_up=False)
    assert a.num_parameters() - c.num_parameters() == 5 * (128 * 128 + 128 + 2 * 128)


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("hw", [(37, 53), (5, 7), (64, 40), (1, 9)])
def test_any_size_through_dip(name, hw):
    small = {"skip": dict(channels_down=[8] * 5, channels_up=[8] * 5, channels_skip=[2] * 5),
             "unet": dict(features=(4, 8, 8)), "resnet": dict(blocks=1, channels=4),
             "deep_decoder": dict(channels=8, layers=4), "conv_decoder": dict(channels=8, layers=3),
             "tddip": dict(channels=8)}[name]
    in_ch = None if name in ("deep_decoder", "conv_decoder") else 4
    net = build_net(name, in_ch, 3, out_hw=hw, **small)
    code = make_code("noise", net.in_channels, net.code_size(*hw), generator=torch.Generator().manual_seed(0))
    x = DIP(net, code, hw, reg_noise_std=0.03, generator=torch.Generator().manual_seed(1))()
    assert x.shape == (1, 3, *hw)
    assert torch.isfinite(x).all()
    if name != "tddip":  # the TDDIP decoder is linear (real/imag MRI output); the others end in a sigmoid
        assert x.min() >= 0 and x.max() <= 1


def test_upsample_mode_list_and_zero_skips():
    net = build_net("skip", 3, 3, channels_down=[8] * 3, channels_up=[8] * 3, channels_skip=[0, 0, 4],
                    upsample_mode=["nearest", "bilinear", "bilinear"])
    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_bad_net_options():
    with pytest.raises(ConfigError, match="unknown net"):
        build_net("vgg", 3, 3)
    with pytest.raises(ConfigError):
        build_net("skip", 3, 3, channels_down=[8, 8], channels_up=[8], channels_skip=[0])
    with pytest.raises(ConfigError):
        build_net("skip", 3, 3, upsample_mode="cubic")
    with pytest.raises(ConfigError, match="bad option"):
        build_net("resnet", 3, 3, depth=4)
    with pytest.raises(ConfigError):
        make_code("meshgrid", 3, (4, 4))


def test_codes():
    g = torch.Generator().manual_seed(0)
    u = make_code("noise", 32, (16, 16), generator=g)
    assert u.min() >= 0 and u.max() < 0.1 and abs(u.mean().item() - 0.05) < 0.005
    m = make_code("meshgrid", 2, (3, 5))
    assert m[0, 0, 0].tolist() == [0, 0.25, 0.5, 0.75, 1.0] and m[0, 1, :, 0].tolist() == [0, 0.5, 1.0]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(make_code("gaussian", 2, (4, 4), generator=g1), make_code("gaussian", 2, (4, 4), generator=g2))
