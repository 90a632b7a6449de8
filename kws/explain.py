"""Looking inside the network: first-layer filters, each conv layer's feature maps, and Grad-CAM.

Grad-CAM (Selvaraju et al., 2017) weighs each channel of the last convolutional layer by how much
the chosen class's score grows with it (the spatial mean of the gradient), sums the weighted
channels and keeps the positive part: a coarse map of where in the input the evidence for that
class lies. It is stretched back to the input image's size so it can be laid over it. A model of
several voting nets is drawn through its first; Grad-CAM then explains the class they chose together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .audio import SAMPLE_RATE
from .errors import UserError
from .infer import Prediction, check_modality, classify_audio, classify_pixels
from .model import Classifier, first_member


@dataclass
class Explanation:
    image: np.ndarray  # (H, W): the input exactly as the convnet receives it
    filters: np.ndarray  # (n, 3, 3): the first layer's kernels
    feature_maps: list[np.ndarray]  # per conv layer, (channels, h, w) after its ReLU
    heat: np.ndarray  # (H, W) in [0, 1]: Grad-CAM for `target` over the input image
    target: str
    prediction: Prediction


def feature_maps(net: nn.Module, image: torch.Tensor) -> list[torch.Tensor]:
    """The output of every conv layer (after its activation), in order."""
    maps, x = [], image
    for layer in net.features:
        x = layer(x)
        if isinstance(layer, nn.ReLU):
            maps.append(x)
    return maps


def grad_cam(model: Classifier, x: torch.Tensor, target: int | None = None) -> tuple[np.ndarray, int]:
    """Grad-CAM over the input image for one raw input `x` (a waveform or pixels, batch of one).

    Returns the heat-map, the size of the frontend's image, scaled to [0, 1], and the class it
    explains (the top prediction unless `target` is given).
    """
    model.eval()
    with torch.no_grad():
        image = model.frontend(x)
        last = feature_maps(first_member(model.net), image)[-1]
        scores = model.to_labels(model.net(image))  # (all members' choice)
        target = int(scores.argmax(1)[0]) if target is None else target
    return _grad_cam(model, last, image.shape[-2:], target)


def _grad_cam(model: Classifier, last: torch.Tensor, size: torch.Size, target: int) -> tuple[np.ndarray, int]:
    """Grad-CAM from the last conv layer's maps (the net's features end with that layer's ReLU)."""
    activations = last.detach().requires_grad_(True)
    scores = model.to_labels(first_member(model.net).head(activations))  # (per label: a keyword's own logit)
    (grads,) = torch.autograd.grad(scores[0, target], activations)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activations).sum(1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[0, 0]
    peak = float(cam.max())
    return (cam / peak).numpy() if peak > 0 else cam.numpy(), target


def model_input(model: Classifier, path: Path) -> tuple[torch.Tensor, Prediction]:
    """The raw input the model reads from a file (the best 1-s window of a long clip) and its prediction."""
    check_modality(model, path)
    if model.kind == "audio":
        from .audio import fit_length, load_audio

        audio = load_audio(path)
        pred = classify_audio(model, audio, str(path))
        length = model.clip_samples
        start = round(pred.start * SAMPLE_RATE)
        return torch.from_numpy(fit_length(audio[start:start + length], length)).unsqueeze(0), pred
    from .images import load_image

    pixels = load_image(path, model.frontend.image_shape)
    return pixels, classify_pixels(model, pixels, str(path))


def explain(model: Classifier, path: Path, target: str | None = None) -> Explanation:
    if target is not None and target not in model.labels:
        raise UserError(f"--target {target}: the model does not know it (it knows {', '.join(model.labels)})")
    x, pred = model_input(model, path)
    model.eval()
    with torch.no_grad():
        image = model.frontend(x)
        maps = feature_maps(first_member(model.net), image)
    heat, index = _grad_cam(model, maps[-1], image.shape[-2:], model.labels.index(target or pred.top(1)[0][0]))
    first = next(m for m in first_member(model.net).features if isinstance(m, nn.Conv2d))
    return Explanation(image=image[0, 0].numpy(), filters=first.weight.detach()[:, 0].numpy(),
                       feature_maps=[m[0].numpy() for m in maps], heat=heat, target=model.labels[index],
                       prediction=pred)
