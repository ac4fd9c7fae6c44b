"""ImageNet initialisation through torchvision's weights API, and the offline failure."""
import urllib.error

import pytest
import torch
from torchvision.models import resnet18, resnet50

from model.backbones import PretrainedWeightsError
from model.network import STCN


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path


def test_pretrained_loads_cached_imagenet_weights(torch_home):
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(0)
    r50, r18 = resnet50().state_dict(), resnet18().state_dict()
    torch.save(r50, checkpoints / "resnet50-0676ba61.pth")
    torch.save(r18, checkpoints / "resnet18-f37072fd.pth")
    net = STCN(pretrained=True)
    assert torch.equal(net.key_encoder.conv1.weight, r50["conv1.weight"])
    assert torch.equal(net.key_encoder.layer3[5].conv3.weight, r50["layer3.5.conv3.weight"])
    assert torch.equal(net.value_encoder.layer2[0].downsample[0].weight, r18["layer2.0.downsample.0.weight"])
    conv1 = net.value_encoder.conv1.weight.detach()
    assert torch.equal(conv1[:, :3], r18["conv1.weight"])
    extra = conv1[:, 3:].flatten(start_dim=1)  # 64 x 98: orthonormal rows
    torch.testing.assert_close(extra @ extra.T, torch.eye(64), atol=1e-5, rtol=0)


def test_offline_without_cache_gives_one_clear_message(torch_home):
    with pytest.raises(PretrainedWeightsError) as error:
        STCN(pretrained=True)
    message = str(error.value)
    assert "resnet50-0676ba61.pth" in message and "TORCH_HOME" in message and "--no_pretrained" in message
