"""Compressed models on disk: the served graph and its torch reference.

A compressed model folder is a normal model folder (config, tokenizer, frugal.json) plus:
* `model.onnx`: what serves, evaluates and is profiled (`frugal.model.export` writes it, ONNX Runtime
  executes every planned width natively, `frugal.model.runtime` runs it);
* `model.safetensors`: the torch reference of the same plan (distillation, invocation counts,
  parity checks): each planned weight as packed block codes (`<name>.codes`, 8 // bits per
  byte) with float32 block scales (`<name>.scale`; per output channel for an 8-bit linear
  weight, `frugal.model.quantize.block_of`), pruned (0-bit) ones not at all;
* `compression.json`: the bits, block size, every tensor's shape (structured pruning stores
  smaller linear layers) and the plan that chose them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertConfig

from frugal.compress.qat import KERNEL_BITS, ORT_DYNAMIC
from frugal.energy.modeled import WORKLOADS, DeviceProfile, WorkloadEnergy, model_energy
from frugal.errors import FrugalError
from frugal.files import write_json
from frugal.model.export import export_onnx, save_classifier
from frugal.model.modeling import (
    META_FILE,
    Classifier,
    MeanPoolingClassifier,
    load_classifier,
)
from frugal.model.quantize import (
    INT_BITS,
    block_of,
    dequantize,
    pack_codes,
    symmetric_codes,
    unpack_codes,
)
from frugal.model.runtime import FLOAT_BITS, ONNX_FILE, check_plan, executed_widths, load_graph

PLAN_FILE = "compression.json"


def is_compressed(model_dir: Path) -> bool:
    return (Path(model_dir) / PLAN_FILE).is_file()


def save_compressed(
    clf: Classifier,
    bits: dict[str, int],
    out_dir: Path,
    plan: dict,
    execution: str,
    block_size: int,
) -> None:
    """Write `clf` with each weight in `bits` stored at its width (module docstring), and the
    ONNX graph that executes it. The weights must already hold their quantized values (after
    `distill` or `apply_bits`). `execution`: "int8" runs quantized linear layers with int8
    activations; "float" keeps activations in float (weight-only); `ORT_DYNAMIC` saves `clf` as
    a plain model folder whose graph ONNX Runtime's `quantize_dynamic` rewrote (no plan file:
    its widths are read from the graph, like the base model's)."""
    if execution == ORT_DYNAMIC:
        _save_ort_dynamic(clf, Path(out_dir), plan["per_channel"], plan["reduce_range"])
        return
    if execution not in KERNEL_BITS:
        raise ValueError(f"execution must be one of {list(KERNEL_BITS)}, got {execution!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    shapes: dict[str, list[int]] = {}
    for name, value in clf.model.state_dict().items():
        width = bits.get(name, FLOAT_BITS)
        value = value.detach().contiguous()
        shapes[name] = list(value.shape)
        if width == FLOAT_BITS:
            tensors[name] = value
        elif width in INT_BITS:
            codes, scale = symmetric_codes(value, width, block_of(name, width, block_size))
            tensors[f"{name}.codes"] = pack_codes(codes, width)
            tensors[f"{name}.scale"] = scale.to(torch.float32).contiguous()
        elif width != 0:
            raise ValueError(f"{name}: cannot store {width} bits")
    save_file(tensors, str(out_dir / "model.safetensors"))
    clf.model.config.save_pretrained(out_dir)
    clf.tokenizer.save_pretrained(out_dir)
    meta = {"labels": clf.labels, "max_length": clf.max_length}
    write_json(meta, out_dir / META_FILE)
    record = {
        "bits": bits,
        "block_size": block_size,
        "shapes": shapes,  # all of them: structured pruning shrinks linear layers
        "execution": execution,
        "plan": plan,
    }
    write_json(record, out_dir / PLAN_FILE)
    export_onnx(clf, bits, out_dir / ONNX_FILE, block_size, KERNEL_BITS[execution])


def _save_ort_dynamic(
    clf: Classifier, out_dir: Path, per_channel: bool, reduce_range: bool
) -> None:
    save_classifier(clf, out_dir)  # model.onnx: the fused float graph every model starts from
    quantized = ort_dynamic(out_dir / ONNX_FILE, per_channel, reduce_range)
    onnx.save(quantized, str(out_dir / ONNX_FILE))


def ort_dynamic(float_path: Path, per_channel: bool, reduce_range: bool) -> onnx.ModelProto:
    """ONNX Runtime's one-line dynamic int8 (`quantize_dynamic`, QInt8 weights, per tensor or
    per output channel, full or reduced (7-bit) range) of a float graph: the anchor a user
    would pick instead."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / ONNX_FILE
        quantize_dynamic(
            float_path, out, weight_type=QuantType.QInt8, per_channel=per_channel,
            reduce_range=reduce_range,
            # ONNX's shape inference cannot type the fused ops' outputs: they are float
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
        return onnx.load(str(out))


def graph_accuracy(
    graph: onnx.ModelProto, clf: Classifier, texts: list[str], labels: list[str], threads: int = 2
) -> float:
    """Accuracy of an ONNX graph of `clf` on (`texts`, `labels`), run by ONNX Runtime one
    request at a time, as it serves (DynamicQuantizeMatMul's input range is per call)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    hits = 0
    for text, label in zip(texts, labels, strict=True):
        batch = clf.tokenizer(
            [text], truncation=True, max_length=clf.max_length, return_tensors="np"
        )
        feed = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
        hits += clf.labels[int(session.run(["logits"], feed)[0].argmax())] == label
    return hits / max(len(texts), 1)


def _shrink_to(model: MeanPoolingClassifier, shapes: dict[str, list[int]]) -> None:
    """Give every linear layer the shape it was stored with (structured pruning removed heads
    or feed-forward channels), and each attention module its remaining head count."""
    for name, module in list(model.named_modules()):
        shape = shapes.get(f"{name}.weight")
        if isinstance(module, torch.nn.Linear) and shape and list(module.weight.shape) != shape:
            parent, _, child = name.rpartition(".")
            smaller = torch.nn.Linear(shape[1], shape[0], bias=module.bias is not None)
            setattr(model.get_submodule(parent), child, smaller)
    for layer in model.bert.encoder.layer:
        attention = layer.attention.self
        attention.all_head_size = attention.query.out_features
        attention.num_attention_heads = attention.all_head_size // attention.attention_head_size


def load_float(model_dir: Path) -> tuple[Classifier, dict[str, float]]:
    """The torch reference: every weight dequantized to float32 (exactly the values the served
    graph multiplies by), and the planned bits per weight."""
    model_dir = Path(model_dir)
    if not is_compressed(model_dir):
        return load_classifier(model_dir), {}
    record = json.loads((model_dir / PLAN_FILE).read_text(encoding="utf-8"))
    bits: dict[str, int] = {k: int(v) for k, v in record["bits"].items()}
    block_size = int(record["block_size"])
    stored = load_file(str(model_dir / "model.safetensors"))
    model = MeanPoolingClassifier(BertConfig.from_pretrained(model_dir))
    _shrink_to(model, record["shapes"])
    state = model.state_dict()
    for name in state:
        width = bits.get(name, FLOAT_BITS)
        shape = tuple(record["shapes"].get(name, state[name].shape))
        if width == 0:
            state[name] = torch.zeros(shape)
        elif width in INT_BITS:
            codes = unpack_codes(stored[f"{name}.codes"], width, shape)
            block = block_of(name, width, block_size)
            state[name] = dequantize(codes, stored[f"{name}.scale"], block)
        elif name in stored:
            state[name] = stored[name].to(torch.float32)
        else:
            raise FrugalError(f"{model_dir}: weight {name} missing from model.safetensors")
    model.load_state_dict(state)
    model.eval()
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    clf = Classifier(
        model, AutoTokenizer.from_pretrained(model_dir), meta["labels"], meta["max_length"]
    )
    return clf, bits


def model_energy_of(
    model_dir: Path,
    texts: list[str],
    profiles: list[DeviceProfile],
    workloads: tuple[str, ...] = WORKLOADS,
) -> list[WorkloadEnergy]:
    """Modeled energy of a saved model over `texts`: invocations counted on its torch
    reference, every weight priced at the width its `model.onnx` executes (read from the
    graph, never from the plan)."""
    graph = load_graph(model_dir)
    check_plan(model_dir, graph)  # a graph that does not run its plan is refused, not priced
    executed = executed_widths(graph)
    clf, _ = load_float(model_dir)
    return model_energy(
        clf.model, clf.tokenizer, texts, clf.max_length, profiles, executed, workloads
    )
