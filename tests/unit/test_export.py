"""The served graph: ONNX Runtime executes each planned width natively, the widths priced are
read back from the graph, the runtime needs no torch, and a broken model.onnx is a clear
error."""

import copy
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from frugal.compress.qat import apply_bits, quantized_activations
from frugal.errors import FrugalError
from frugal.model.export import export_onnx
from frugal.model.modeling import logits_of
from frugal.model.quantize import plannable_tensors
from frugal.model.runtime import (
    KERNEL_OF,
    NATIVE_BITS,
    OnnxClassifier,
    check_native,
    executed_widths,
    load_graph,
)

BLOCK = 64
FUSED = ("MultiHeadAttention", "SkipLayerNormalization", "BiasGelu")
TEXTS = [
    "Who wrote Hamlet ?",
    "How far is the Moon from the Earth ?",
    "Where is the Eiffel Tower ?",
    "What does NASA stand for ?",
]


@pytest.fixture(scope="module")
def clf():
    from frugal.model.modeling import new_classifier

    torch.manual_seed(0)
    model = new_classifier(["DESC", "HUM", "LOC", "NUM"], max_length=24)
    model.model.eval()
    return model


def _folder(clf, path):
    path.mkdir(parents=True, exist_ok=True)
    clf.tokenizer.save_pretrained(path)
    meta = {"labels": clf.labels, "max_length": clf.max_length}
    (path / "frugal.json").write_text(json.dumps(meta))
    return path


def test_float_graph_computes_what_torch_does(clf, tmp_path):
    folder = _folder(clf, tmp_path / "f")
    export_onnx(clf, {}, folder / "model.onnx", BLOCK)
    served = OnnxClassifier(folder)
    reference = logits_of(clf, TEXTS).numpy()
    assert np.abs(served.logits(TEXTS) - reference).max() < 1e-4
    # batch of one and padded batches agree: padding is masked as in torch
    one = np.concatenate([served.logits([t]) for t in TEXTS])
    assert np.abs(one - reference).max() < 1e-4
    assert not clf.model.training  # exporting leaves the model as it was


def test_every_planned_width_runs_natively_and_is_read_back_from_the_graph(clf, tmp_path):
    bits = {name: 4 for name in plannable_tensors(clf.model)}
    bits["bert.encoder.layer.1.attention.self.key.weight"] = 0
    bits["bert.encoder.layer.1.attention.self.query.weight"] = 0  # two equal (zero) weights
    bits["bert.encoder.layer.1.output.dense.weight"] = 8
    bits["bert.embeddings.word_embeddings.weight"] = 2
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits, BLOCK)
    folder = _folder(quantized, tmp_path / "q")
    export_onnx(quantized, bits, folder / "model.onnx", BLOCK, activation_bits=8)
    graph = load_graph(folder)
    ops = {n.name: n.op_type for n in graph.graph.node}
    assert ops["bert.embeddings.word_embeddings.weight"] == "GatherBlockQuantized"
    assert ops["bert.encoder.layer.0.attention.self.query.weight"] == "MatMulNBits"
    assert ops["bert.encoder.layer.1.attention.self.key.weight"] == "ConstantOfShape"
    # no float copy of any planned weight is left in the graph
    floats = {
        i.name.removesuffix(".T")
        for i in graph.graph.initializer
        if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 2
    }
    assert not floats & set(bits)
    executed = executed_widths(graph)
    for name, width in bits.items():
        assert (executed[name].bits if name in executed else 0) == width, name
    query = executed["bert.encoder.layer.0.attention.self.query.weight"]
    hidden = clf.model.config.hidden_size
    assert query.mac_bits == 8 and query.scale_bytes == 4 * hidden * -(-hidden // BLOCK)
    assert executed["bert.embeddings.LayerNorm.weight"].bits == 32
    # ONNX Runtime predicts what the torch fake-quant reference does
    with quantized_activations(quantized.model, 8, BLOCK, bits):
        reference = logits_of(quantized, TEXTS).numpy()
    served = OnnxClassifier(folder).logits(TEXTS)
    assert (served.argmax(1) == reference.argmax(1)).all()
    assert np.abs(served - reference).max() < 0.05 * np.abs(reference).max() + 1e-3


def test_each_width_runs_on_its_kernel_and_the_fusions_survive_the_rewrite(clf, tmp_path):
    """Given a plan with every linear width, when exported, then 8 bits runs on
    DynamicQuantizeMatMul with one scale per output channel, 4 bits on MatMulNBits, a pruned
    layer has no kernel at all, and the graph keeps the fusions of the float graph
    (MultiHeadAttention, SkipLayerNormalization, BiasGelu: one per layer, two, one)."""
    layers = clf.model.config.num_hidden_layers
    names = plannable_tensors(clf.model)
    bits = {name: 8 for name in names if "embeddings" not in name}
    bits["bert.encoder.layer.0.attention.self.query.weight"] = 4
    bits["bert.encoder.layer.0.intermediate.dense.weight"] = 0
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits, BLOCK)
    fused = {}
    for tag, plan in (("float", {}), ("mixed", bits)):
        folder = _folder(quantized, tmp_path / tag)
        export_onnx(quantized, plan, folder / "model.onnx", BLOCK)
        graph = load_graph(folder)
        ops = [n.op_type for n in graph.graph.node]
        fused[tag] = {op: ops.count(op) for op in FUSED}
        kernels = {n.name: n.op_type for n in graph.graph.node}
    assert fused["float"] == fused["mixed"] == {
        "MultiHeadAttention": layers, "SkipLayerNormalization": 2 * layers, "BiasGelu": layers
    }  # fmt: skip
    assert kernels["bert.encoder.layer.0.attention.self.query.weight"] == KERNEL_OF[4]
    assert kernels["bert.encoder.layer.0.attention.self.key.weight"] == KERNEL_OF[8]
    assert KERNEL_OF[8] == "DynamicQuantizeMatMul" and KERNEL_OF[4] == "MatMulNBits"
    assert "MatMul" not in set(kernels.values())  # every linear layer is quantized or gone
    pruned = "bert.encoder.layer.0.intermediate.dense.weight"
    assert not any(pruned in i.name for i in graph.graph.initializer if i.name != f"{pruned}.n")
    key = executed_widths(graph)["bert.encoder.layer.1.attention.self.key.weight"]
    assert key.scale_bytes == 4 * clf.model.config.hidden_size  # one float32 scale per channel
    with quantized_activations(quantized.model, 8, BLOCK, bits):
        reference = np.concatenate([logits_of(quantized, [t]).numpy() for t in TEXTS])
    served = np.concatenate([OnnxClassifier(folder).logits([t]) for t in TEXTS])
    assert np.abs(served - reference).max() < 0.05 * np.abs(reference).max() + 1e-3


def test_int8_activations_are_what_the_kernel_runs(clf, tmp_path):
    """accuracy_level 4 really quantizes the activations (the MACs are int8): its outputs
    differ from the float-activation graph of the same weights, and sit closer to the int8
    reference than to the float one."""
    bits = {name: 4 for name in plannable_tensors(clf.model) if "embeddings" not in name}
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits, BLOCK)
    int8 = _folder(quantized, tmp_path / "int8")
    weight_only = _folder(quantized, tmp_path / "float")
    export_onnx(quantized, bits, int8 / "model.onnx", BLOCK, activation_bits=8)
    export_onnx(quantized, bits, weight_only / "model.onnx", BLOCK, activation_bits=32)
    a, b = OnnxClassifier(int8).logits(TEXTS), OnnxClassifier(weight_only).logits(TEXTS)
    assert np.abs(a - b).max() > 1e-5
    float_reference = logits_of(quantized, TEXTS).numpy()
    assert np.abs(b - float_reference).max() < 1e-4
    assert executed_widths(load_graph(weight_only))[next(iter(bits))].mac_bits == 32


def test_widths_the_runtime_does_not_execute_natively_are_refused():
    assert NATIVE_BITS["linear"] == (0, 4, 8, 32)
    with pytest.raises(ValueError, match="not execute natively"):
        check_native({"bert.encoder.layer.0.attention.self.query.weight": 2})
    with pytest.raises(ValueError, match="not execute natively"):
        check_native({"bert.embeddings.word_embeddings.weight": 0})
    check_native({"bert.embeddings.word_embeddings.weight": 2})


def test_a_missing_truncated_or_mismatched_graph_is_a_clear_error(clf, tmp_path):
    folder = _folder(clf, tmp_path / "m")
    with pytest.raises(FrugalError, match=r"model.onnx: missing.*dvc repro"):
        OnnxClassifier(folder)
    bits = {"bert.encoder.layer.0.attention.self.query.weight": 4}
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits, BLOCK)
    export_onnx(quantized, bits, folder / "model.onnx", BLOCK)
    whole = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FrugalError, match=r"model.onnx: not a valid ONNX model"):
        OnnxClassifier(folder)
    (folder / "model.onnx").write_bytes(whole)
    plan = {"bits": {"bert.encoder.layer.0.attention.self.query.weight": 8}}
    (folder / "compression.json").write_text(json.dumps(plan))
    with pytest.raises(FrugalError, match=r"does not match its plan.*planned 8, runs 4"):
        OnnxClassifier(folder)


def test_the_serving_runtime_imports_no_torch():
    code = "import sys, frugal.model.runtime, frugal.energy.measure; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
