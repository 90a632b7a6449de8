"""Training on a GPU, and what a GPU-trained model is good for on a machine without one.

Skipped where torch sees no CUDA GPU (CI has none): run on a machine with one."""

import json
import socket

import pytest
import torch
import torch.distributed as dist

from kws import distributed
from kws.augment import AugmentConfig, SpecAugment

from .conftest import kws

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


def test_the_gpu_trains_as_the_cpu_does_and_its_model_classifies_without_one(small_corpus, tmp_path):
    # (the flags of test_distributed's runs, whose accuracy bar holds on this corpus in five epochs)
    args = ["train", "--dataset", small_corpus, "--words", "yes,no,stop", "--epochs", "5", "--seed", "0",
            "--recipe", "speech-commands", "--members", "1", "--label-smoothing", "0", "--spliced-words", "0",
            "--calibration-minutes", "10"]
    said = {}
    for device in ("cuda", "cpu"):
        r = kws(*args, "--device", device, "--out", tmp_path / device)
        assert r.returncode == 0, r.stderr
        said[device] = r.stderr
    assert f"training on {torch.cuda.get_device_name()} in " in said["cuda"] and "training on the CPU (" in said["cpu"]
    gpu, cpu = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("cuda", "cpu"))
    # `precision="auto"`: bfloat16 where the GPU computes it
    assert gpu["autocast"] == ("bfloat16" if torch.cuda.is_bf16_supported() else None)
    assert gpu["test_accuracy"] >= 0.8 and abs(gpu["test_accuracy"] - cpu["test_accuracy"]) <= 0.1, (gpu, cpu)
    clip = sorted((small_corpus / "yes").glob("*.wav"))[0]
    # The GPU's model with the GPU hidden: the checkpoint holds nothing a CPU cannot load.
    shown = kws("classify", "--model", tmp_path / "cuda" / "model.pt", clip, "--json")
    hidden = kws("classify", "--model", tmp_path / "cuda" / "model.pt", clip, "--json", env={"CUDA_VISIBLE_DEVICES": ""})
    assert shown.returncode == 0 and hidden.returncode == 0, shown.stderr + hidden.stderr
    assert json.loads(hidden.stdout) == json.loads(shown.stdout)


def test_specaugment_stretches_and_stripes_a_gpu_image_as_it_does_a_cpu_one():
    """In training it runs inside the net's forward pass, on the GPU's images, drawing on the CPU."""
    config = AugmentConfig(warp=0.2, freq_masks=2, freq_mask_bands=8, time_masks=2, time_mask_frames=10)
    image = torch.randn(16, 1, 40, 98)
    cpu = SpecAugment(config, torch.Generator().manual_seed(3))(image)
    gpu = SpecAugment(config, torch.Generator().manual_seed(3))(image.cuda())
    assert gpu.device.type == "cuda" and not torch.equal(cpu, image)
    torch.testing.assert_close(gpu.cpu(), cpu)


def test_the_ranks_agree_on_cpu_figures_over_the_gpu_process_group(monkeypatch):
    """torchrun on GPUs joins the group `distributed.backend` names; the stop flag and the epoch's
    sums are CPU tensors, which a bare nccl group refuses. A group of one on this GPU, with the
    functions told the group is shared, so each collective really runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.cuda.set_device(0)
    dist.init_process_group(distributed.backend("cuda"), init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        monkeypatch.setattr(distributed, "active", lambda: True)
        assert distributed.sum_across([1.5, 2.0, 3.0]) == [1.5, 2.0, 3.0]
        assert distributed.any_across(True) and not distributed.any_across(False)
        assert distributed.broadcast("runs/x") == "runs/x"
        distributed.barrier()
        ran = []
        with distributed.main_first():  # (rank 0's turn, then the barrier the others wait at)
            ran.append(distributed.rank())
        assert ran == [0]
        grads = torch.ones(4, device="cuda")
        dist.all_reduce(grads)  # (what DistributedDataParallel does with the gradients: on the GPU)
        assert grads.tolist() == [1.0] * 4
    finally:
        dist.destroy_process_group()
