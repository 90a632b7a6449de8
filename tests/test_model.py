import json

import pytest
import torch

from kws.features import LogMel, PixelScale
from kws.model import ConvNet, NetConfig, build_net, forward_flops, new_classifier

from .conftest import kws


def test_chapter4_on_digits_is_the_books_network():
    net = ConvNet(NetConfig(28, 28, 10))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [16, 32, 32]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert [(d.in_features, d.out_features) for d in dense] == [(3 * 3 * 32, 64), (64, 10)]
    conv = (1 * 9 + 1) * 16 + (16 * 9 + 1) * 32 + (32 * 9 + 1) * 32
    assert sum(p.numel() for p in net.parameters()) == conv + (288 + 1) * 64 + (64 + 1) * 10 == 33194


@pytest.mark.parametrize("preset", ["chapter4", "wide"])
def test_one_class_serves_images_and_spectrograms(preset):
    audio = new_classifier(LogMel(), ["a", "b", "c"], preset)
    image = new_classifier(PixelScale(), [str(d) for d in range(10)], preset)
    assert type(audio.net) is type(image.net)
    assert audio(torch.randn(5, 16000)).shape == (5, 3)
    assert image(torch.randint(0, 255, (5, 28, 28), dtype=torch.uint8)).shape == (5, 10)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="preset"):
        ConvNet(NetConfig(28, 28, 10, "huge"))


def test_each_preset_trains_at_its_own_learning_rate(tmp_path):
    for preset, lr in (("chapter4", 3e-3), ("wide", 1e-3)):
        run = tmp_path / preset
        r = kws("train", "--dataset", "digits", "--model", preset, "--epochs", "1", "--out", run)
        assert r.returncode == 0, r.stderr
        assert json.loads((run / "metrics.json").read_text())["train_config"]["lr"] == lr
    r = kws("train", "--dataset", "digits", "--model", "wide", "--epochs", "1", "--lr", "0.02", "--out", tmp_path / "x")
    assert json.loads((tmp_path / "x" / "metrics.json").read_text())["train_config"]["lr"] == 0.02


def test_a_time_pooled_net_answers_the_same_wherever_the_word_is():
    """`time_pool` is one more max-pool, over the whole width: the convolutions are the book's, and a
    pattern moved in time (by whole cells of the two 2×2 pools, so that they tile it alike) gives the
    same answer, where the flattened net's dense layer sees a different position."""
    torch.manual_seed(0)
    pooled, flat = ConvNet(NetConfig(40, 97, 3, time_pool=True)), ConvNet(NetConfig(40, 97, 3))
    assert [m.out_channels for m in pooled.modules() if isinstance(m, torch.nn.Conv2d)] == [16, 32, 32]
    assert pooled.head[2].in_features == 32 * 6 and flat.head[1].in_features == 32 * 6 * 20
    word = torch.zeros(1, 1, 40, 97)
    word[0, 0, 5:30, 30:50] = torch.randn(25, 20)
    later = torch.roll(word, 16, dims=3)  # 16 frames: still inside the image
    with torch.no_grad():
        assert torch.allclose(pooled(word), pooled(later), atol=1e-6)
        assert not torch.allclose(flat(word), flat(later), atol=1e-3)


def test_the_time_pool_travels_with_the_checkpoint_and_old_ones_load_without_it(tmp_path):
    from kws.checkpoint import load_model, save_model

    model = new_classifier(LogMel(), ["a", "b", "c"], members=2, time_pool=True)
    save_model(model, tmp_path / "m.pt")
    loaded, meta = load_model(tmp_path / "m.pt")
    x = torch.randn(2, 16000)
    assert meta["net"]["time_pool"] is True
    assert torch.allclose(loaded(x), model(x))
    data = torch.load(tmp_path / "m.pt", weights_only=True)  # a checkpoint from before the option
    plain = new_classifier(LogMel(), ["a", "b", "c"])
    data = {**data, **plain.describe(), "state_dict": plain.state_dict()}
    del data["net"]["time_pool"]
    torch.save(data, tmp_path / "old.pt")
    old, _ = load_model(tmp_path / "old.pt")
    assert not old.net.config.time_pool and torch.allclose(old(x), plain(x))


def test_the_chapter4_nets_flops_on_a_28x28_digit_are_those_counted_by_hand():
    # Multiply-adds of each layer (3×3 valid convolutions, 2×2 pools that drop the odd row):
    by_hand = (26 * 26 * 16 * (1 * 9)      # conv 16: 28 → 26
               + 11 * 11 * 32 * (16 * 9)   # pool → 13, conv 32 → 11
               + 3 * 3 * 32 * (32 * 9)     # pool → 5, conv 32 → 3
               + 288 * 64                  # dense 64 on the flattened 3·3·32
               + 64 * 10)                  # dense 10
    assert by_hand == 756_928
    net = ConvNet(NetConfig(28, 28, 10))
    assert forward_flops(net, 28, 28) == 2 * by_hand
    assert net.training  # counting leaves the net's mode as it was
    # Two voting members cost twice one.
    assert forward_flops(build_net(NetConfig(28, 28, 10, members=2)), 28, 28) == 4 * by_hand
