"""The chapter-4 convnet, built for any input image size, and the classifier that wraps it.

One class serves a 28×28 digit and a 40×97 log-mel image: the layer sizes after the convolutions
are computed from the input shape, not written down.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch
from torch import nn

from .features import build_frontend

PRESETS = ("chapter4", "wide")
# Adam's learning rate for each preset: the wide net (batch norm, dropout) crawls at the chapter-4
# net's rate on the offline corpus.
LEARNING_RATES = {"chapter4": 3e-3, "wide": 1e-3}


@dataclass
class NetConfig:
    height: int
    width: int
    n_classes: int
    preset: str = "chapter4"
    members: int = 1  # nets of this preset, trained side by side, whose probabilities are averaged
    time_pool: bool = False  # max-pool the last conv layer's maps over all of time (audio: the width)


class ConvNet(nn.Module):
    """conv 3×3 relu → maxpool 2 → conv 3×3 relu → maxpool 2 → conv 3×3 relu → dense relu → dense.

    `chapter4`: 16/32/32 filters and a 64-unit dense layer, exactly the book's MNIST model.
    `wide`: 32/64/64 filters, batch norm after each convolution, dropout, a 128-unit dense layer.
    `time_pool` puts one more max-pool before the dense layers, over the whole width: the dense layers
    then see what each filter found at each height (a mel band) and not when, so a word heard earlier
    or later looks the same to them, and a slower one much the same (docs/real-speech.md).
    The last layer emits logits; softmax is applied by `Classifier.probabilities` (and folded into
    the loss during training, which is the numerically stable way to train a softmax output).
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        if config.preset not in PRESETS:
            raise ValueError(f"unknown model preset {config.preset!r} (choose from {', '.join(PRESETS)})")
        self.config = config
        wide = config.preset == "wide"
        filters, dense = ((32, 64, 64), 128) if wide else ((16, 32, 32), 64)

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3)]
            if wide:
                layers.append(nn.BatchNorm2d(c_out))
            return layers + [nn.ReLU()]

        self.features = nn.Sequential(
            *conv(1, filters[0]), nn.MaxPool2d(2),
            *conv(filters[0], filters[1]), nn.MaxPool2d(2),
            *conv(filters[1], filters[2]),
        )
        # (the time pool goes in the head, not the features: Grad-CAM reads the last conv maps, in time)
        with torch.no_grad():
            maps = self.features(torch.zeros(1, 1, config.height, config.width))
            pool = [nn.MaxPool2d((1, maps.shape[3]))] if config.time_pool else []
            flat = nn.Sequential(*pool)(maps).numel()
        self.head = nn.Sequential(
            *pool,
            nn.Flatten(),
            *([nn.Dropout(0.25)] if wide else []),
            nn.Linear(flat, dense), nn.ReLU(),
            *([nn.Dropout(0.5)] if wide else []),
            nn.Linear(dense, config.n_classes),
        )
        # Channels-last filters and images spare oneDNN's CPU convolutions a layout change in every
        # layer (the network's forward and backward pass ran about 1.2x faster here). Only the
        # memory order changes: the tensors' logical NCHW shapes, and so checkpoints, are the same.
        self.features.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        logits = self.head(self.features(image.contiguous(memory_format=torch.channels_last)))
        return logits.unsqueeze(0) if per_member else logits  # (one member: see `Ensemble`)


class Ensemble(nn.Module):
    """Several nets of one preset, each initialised on its own and trained on its own loss from the
    same batches; they vote by averaging their probabilities.

    Why: on voices unlike any it trained on, one chapter-4 net's accuracy swings by several points
    from seed to seed, and the average of several nets' probabilities scored above the nets alone
    (docs/real-speech.md). Side by side in one run, they share the frontend and the augmentation.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(ConvNet(replace(config, members=1)) for _ in range(config.members))

    def forward(self, image: torch.Tensor, per_member: bool = False) -> torch.Tensor:
        """Log of the members' mean probabilities (softmax of it is that mean), or, with
        `per_member`, each member's own logits, (members, batch, classes), for training."""
        logits = torch.stack([member(image) for member in self.members])
        if per_member:
            return logits
        return torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=0) - math.log(len(self.members))


def build_net(config: NetConfig) -> nn.Module:
    return ConvNet(config) if config.members == 1 else Ensemble(config)


# A training step costs about three forward passes: the forward one, then backward's two products
# per layer (the gradient for the layer's input and the one for its weights).
TRAINING_PASSES = 3


def forward_flops(net: nn.Module, height: int, width: int) -> int:
    """Floating-point operations of one image's forward pass through the convolutions and dense
    layers (2 per multiply-add), the arithmetic that dominates it; activations, pooling and biases
    are left out. Counted on a dummy image, so any preset, member count or time pool is covered."""
    total = 0

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * output.numel() * k
        else:
            total += 2 * module.in_features * output.numel()

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 1, height, width))
    finally:
        net.train(was_training)
        for hook in hooks:
            hook.remove()
    return total


def first_member(net: nn.Module) -> ConvNet:
    """The net whose layers `explain` draws: the only one, or an ensemble's first."""
    return net.members[0] if isinstance(net, Ensemble) else net


class Classifier(nn.Module):
    """Raw input (waveform or pixels) → frontend → convnet → logits, plus what it takes to load it.

    With `classes` (finer than `labels`, each a label or "label/part", as `Splits.classes`), the net
    has an output per class and the classifier answers per label, the label's probability being its
    classes' summed (`to_labels`); training (`per_member=True`) still sees the classes' logits.
    """

    def __init__(self, frontend: nn.Module, net: ConvNet, labels: list[str], classes: list[str] | None = None) -> None:
        super().__init__()
        self.frontend = frontend
        self.net = net
        self.labels = list(labels)
        self.classes = list(classes) if classes else None
        owners = [c.split("/")[0] for c in self.classes] if self.classes else self.labels
        stray = [c for c, owner in zip(self.classes or [], owners) if owner not in self.labels]
        if stray:
            raise ValueError(f"classes {', '.join(stray[:3])} belong to no label")
        orphans = sorted(set(self.labels) - set(owners))
        if orphans:
            raise ValueError(f"label {', '.join(orphans)} has no class")
        # Derived from the names, so not stored in checkpoints: the label index of each of the net's
        # outputs, and (outputs, labels) with 1 where an output belongs to a label, so that class
        # probabilities @ pool = the labels' probabilities.
        label_of = torch.tensor([self.labels.index(owner) for owner in owners], dtype=torch.long)
        self.register_buffer("label_of", label_of, persistent=False)
        self.register_buffer("pool", nn.functional.one_hot(label_of, len(self.labels)).float(), persistent=False)

    def to_labels(self, scores: torch.Tensor) -> torch.Tensor:
        """The net's output as logits per label: unchanged where each label is one class, else each
        label's log-sum-exp of its classes' logits, so that the softmax over labels is the classes'
        probabilities summed, and a label of one class keeps that class's logit (Grad-CAM's score)."""
        if self.classes is None:
            return scores
        top = scores.amax(dim=-1, keepdim=True).detach()  # (subtracted and added back: exp cannot overflow)
        summed = torch.exp(scores - top) @ self.pool
        return torch.log(summed.clamp_min(torch.finfo(summed.dtype).tiny)) + top

    @property
    def kind(self) -> str:
        return self.frontend.kind

    @property
    def clip_samples(self) -> int:
        """Samples in one input window (audio models)."""
        return self.frontend.config.clip_samples

    def forward(self, x: torch.Tensor, augment_features: Callable[[torch.Tensor], torch.Tensor] | None = None,
                per_member: bool = False) -> torch.Tensor:
        # The frontend always computes in float32, also inside a mixed-precision training step:
        # the images the net learns from are then the ones inference gives it.
        with torch.autocast(x.device.type, enabled=False):
            image = self.frontend(x)
            if augment_features is not None:
                image = augment_features(image)
        scores = self.net(image, per_member=per_member)
        return scores if per_member else self.to_labels(scores)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x), dim=-1)

    def describe(self) -> dict:
        """The plain-data recipe from which `build_classifier` rebuilds this model."""
        return {"frontend": self.frontend.describe(), "net": asdict(self.net.config), "labels": self.labels,
                **({"classes": self.classes} if self.classes else {})}


def build_classifier(frontend: dict, net: dict, labels: list[str], weights_follow: bool = False,
                     classes: list[str] | None = None) -> Classifier:
    """The model a `describe()` recipe names; `weights_follow` when a state_dict will be loaded next."""
    return Classifier(build_frontend(frontend, weights_follow), build_net(NetConfig(**net)), labels, classes)


def new_classifier(frontend: nn.Module, labels: list[str], preset: str = "chapter4", members: int = 1,
                   classes: list[str] | None = None, time_pool: bool = False) -> Classifier:
    height, width = frontend.image_shape
    net = build_net(NetConfig(height, width, len(classes or labels), preset, members, time_pool))
    return Classifier(frontend, net, labels, classes)
