"""Exporting a trained audio model, frontend included: 16 kHz waveform in, probabilities out.

ONNX runs anywhere onnxruntime does (a Raspberry Pi, a phone, a browser); TorchScript runs in
libtorch without Python. Either way the log-mel frontend is inside the file, so the exported
model hears exactly what the checkpoint hears. `OnnxClassifier` lets `kws classify` and the
streaming engine use an .onnx file in place of a checkpoint.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import UserError
from .model import Classifier

FORMATS = ("onnx", "torchscript")
METADATA_KEY = "kws"


class WaveformToProbabilities(nn.Module):
    """The deployable graph: (batch, samples) float32 waveform in [-1, 1] → (batch, labels) softmax."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(waveform), dim=-1)


def _metadata(model: Classifier, calibration: dict | None) -> str:
    # (the calibrated streaming threshold travels too, so detect and listen on the file fire as on the checkpoint)
    extra = {"calibration": {k: v for k, v in calibration.items() if k != "curve"}} if calibration else {}
    return json.dumps({"labels": model.labels, "clip_samples": model.clip_samples, "sample_rate": 16000,
                       "input": "waveform float32 (batch, clip_samples) in [-1, 1]", "output": "probabilities",
                       **extra})


def export(model: Classifier, path: Path, fmt: str, quantize: str | None = None,
           calibration: dict | None = None) -> Path:
    """Write `model` as `fmt`; `quantize="int8"` (ONNX only) stores the convnet's weights as int8.
    `calibration`: the checkpoint's streaming threshold and how it was set, kept in the metadata."""
    if model.kind != "audio":
        raise UserError("export covers audio models (waveform in, probabilities out)")
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: choose onnx or torchscript")
    graph = WaveformToProbabilities(model).eval()
    example = torch.randn(2, model.clip_samples) * 0.1  # batch 2, so the batch size stays free
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(graph, example)
        torch.jit.save(traced, str(path), _extra_files={"kws.json": _metadata(model, calibration)})
        return path
    try:
        import onnx
    except ImportError:
        raise UserError("ONNX export needs the onnx and onnxscript packages: pip install 'kws[export]'") from None
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # its notes are for exporter developers
    batch = torch.export.Dim("batch", min=1, max=65536)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(graph, (example,), dynamo=True, input_names=["waveform"],
                                    output_names=["probabilities"], dynamic_shapes={"waveform": {0: batch}},
                                    verbose=False)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, _metadata(model, calibration)
    onnx.save_model(proto, str(path))  # one self-contained file: weights, filterbank and all
    if quantize == "int8":
        quantize_int8(path)
    return path


def quantize_int8(path: Path) -> None:
    """onnxruntime's dynamic quantization of the convnet's convolutions and dense layers, in place.
    The frontend (STFT, mel filterbank) stays float: log-mel power spans too many decades for one
    int8 scale, and it holds few of the weights."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx.load(str(path))
    _dense_as_matmul(proto)
    net = [n.name for n in proto.graph.node
           if n.op_type in ("Conv", "MatMul") and any(i.startswith("model.net.") for i in n.input)]
    onnx.save_model(proto, str(path))
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for image pipelines
    quantize_dynamic(str(path), str(path), weight_type=QuantType.QInt8, nodes_to_quantize=net)


def _dense_as_matmul(proto) -> None:
    """Dynamic quantization covers MatMul but not Gemm, which is how a dense layer is exported:
    each Gemm with a constant weight becomes MatMul (the weight stored transposed) + Add."""
    from onnx import helper, numpy_helper

    weights = {w.name: w for w in proto.graph.initializer}
    nodes = []
    for node in proto.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("transA", 0) == 0 and attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0
        if node.op_type != "Gemm" or node.input[1] not in weights or not plain:
            nodes.append(node)
            continue
        weight = weights.pop(node.input[1])
        matrix = numpy_helper.to_array(weight)
        matrix = np.ascontiguousarray(matrix.T if attrs.get("transB", 0) else matrix)
        proto.graph.initializer.remove(weight)
        transposed = weight.name + ".t"  # a new name: the old one may carry its shape in value_info
        proto.graph.initializer.append(numpy_helper.from_array(matrix, transposed))
        product = node.output[0] + "_product" if len(node.input) > 2 else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], transposed], [product], name=node.name))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=node.name + "_bias"))
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)


class OnnxClassifier:
    """An exported .onnx model behind the small interface `classify` and the streamer use."""

    kind = "audio"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("running an .onnx model needs onnxruntime: pip install 'kws[export]'") from None
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such model file")
        try:
            options = ort.SessionOptions()
            options.log_severity_level = 3
            if threads:  # one thread is a small board's budget; default: onnxruntime's choice
                options.intra_op_num_threads = options.inter_op_num_threads = threads
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            meta = json.loads(self.session.get_modelmeta().custom_metadata_map[METADATA_KEY])
        except (KeyError, ValueError):
            raise UserError(f"{path}: an ONNX model, but not one kws exported (no label metadata)") from None
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise UserError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:120]})") from None
        self.labels: list[str] = list(meta["labels"])
        self.clip_samples: int = int(meta["clip_samples"])
        self.calibration: dict | None = meta.get("calibration")

    def probabilities(self, waveform: torch.Tensor) -> torch.Tensor:
        x = waveform.float() / 32768.0 if not waveform.is_floating_point() else waveform.float()
        (probs,) = self.session.run(None, {"waveform": np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return torch.from_numpy(probs)

    def eval(self) -> "OnnxClassifier":
        return self


def compare(model: Classifier, exported: Path, fmt: str, clips: torch.Tensor) -> tuple[float, float]:
    """Run the exported file and the PyTorch model on the same clips: the largest probability gap,
    and the share of clips on whose top label they agree."""
    with torch.no_grad():
        expected = model.probabilities(clips)
        if fmt == "onnx":
            got = OnnxClassifier(exported).probabilities(clips)
        else:
            got = torch.jit.load(str(exported))(clips)
    return float((expected - got).abs().max()), float((expected.argmax(1) == got.argmax(1)).float().mean())
