"""Voting nets: each member is its own chapter-4 net, learns from its own loss, and they average."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf
import torch

from kws.checkpoint import load_model, save_model
from kws.datasets.images import load_digits
from kws.features import LogMel, PixelScale
from kws.model import ConvNet, Ensemble, new_classifier
from kws.train import TrainConfig, fit

from .conftest import kws


def test_members_are_separate_nets_whose_probabilities_are_averaged(tmp_path):
    torch.manual_seed(0)
    model = new_classifier(LogMel(), ["a", "b", "c"], members=3).eval()
    assert isinstance(model.net, Ensemble) and all(type(m) is ConvNet for m in model.net.members)
    first = [m.features[0].weight for m in model.net.members]
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])  # own initial weights
    x = torch.randn(4, 16000)
    image = model.frontend(x)
    own = torch.stack([torch.softmax(m(image), -1) for m in model.net.members])
    assert torch.allclose(model.probabilities(x), own.mean(0), atol=1e-6)
    assert model(x, per_member=True).shape == (3, 4, 3)
    save_model(model, tmp_path / "model.pt", epoch=1, val_accuracy=0.0, dataset="x", train_args={})
    loaded, _ = load_model(tmp_path / "model.pt")
    assert len(loaded.net.members) == 3
    assert torch.allclose(loaded.probabilities(x), model.probabilities(x), atol=1e-6)


def test_each_member_learns_as_if_trained_alone(tmp_path):
    """Member 0 of a two-net model follows the path of the same net trained alone on the same batches:
    its partner's loss never reaches its weights (Adam makes the loss's 1/2 scale irrelevant; what is
    left is rounding, which Adam amplifies for near-zero gradients, about 3% of the distance moved)."""
    splits = load_digits(seed=0)
    runs = {}
    for members in (1, 2):
        torch.manual_seed(0)  # member 0 draws the same initial weights either way
        model = new_classifier(PixelScale(), splits.labels, members=members)
        start = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        # (on the CPU, whatever the machine has: `start` is there, and the rounding above is the CPU's)
        fit(model, splits, TrainConfig(epochs=1, lr=3e-3, device="cpu"), tmp_path / str(members),
            generator=torch.Generator().manual_seed(0), progress=False)
        runs[members] = model, start
    (alone, start), (pair, _) = runs[1], runs[2]
    path_alone = torch.cat([p.detach().flatten() for p in alone.parameters()])
    path_member = torch.cat([p.detach().flatten() for p in pair.net.members[0].parameters()])
    assert float((path_member - path_alone).norm() / (path_alone - start).norm()) < 0.1
    # ...while member 1 learned too, from weights of its own, into a net worth having on its own
    assert not torch.allclose(pair.net.members[0].features[0].weight, pair.net.members[1].features[0].weight)
    x, y = splits.test
    for member in pair.net.members:
        member.eval()
        with torch.no_grad():
            assert float((member(pair.frontend(x)).argmax(1) == y).float().mean()) > 0.5


def test_voting_nets_export_as_one_model(tmp_path):
    """The averaged vote is part of the exported graph: one file, the PyTorch model's probabilities."""
    pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = new_classifier(LogMel(), ["_silence_", "_unknown_", "yes", "no"], members=2)
    save_model(model, tmp_path / "model.pt", epoch=1, val_accuracy=0.0, dataset="synth", train_args={})
    (tmp_path / "clips").mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        sf.write(tmp_path / "clips" / f"{k}.wav", (0.1 * rng.standard_normal(16000)).astype("float32"), 16000)
    r = kws("export", "--format", "onnx", "--model", tmp_path / "model.pt", "--check", tmp_path / "clips")
    assert r.returncode == 0, r.stderr
    assert float(re.search(r"from PyTorch on 3 clips.*: (\S+)", r.stdout).group(1)) < 1e-4
