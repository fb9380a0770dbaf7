"""Export a classifier to ONNX so that ONNX Runtime executes every planned width natively.

The torch model is exported once in float (the legacy TorchScript exporter: a plain graph of
standard ops), then each planned weight is rewritten to the operator that runs it from packed
storage on ONNX Runtime's CPU execution provider:

* a linear weight at 4 or 8 bits -> `MatMulNBits` (com.microsoft): block-wise packed codes,
  one float32 scale per block; `accuracy_level` 4 quantizes the activations to int8 (the
  planned 8-bit activations), 1 keeps them float (weight-only);
* a pruned (0-bit) linear weight -> no weight at all: its output is its bias alone;
* the word-embedding table at 2, 4 or 8 bits -> `GatherBlockQuantized` (com.microsoft);
* everything else stays float32 (`MatMul` over a pre-transposed weight, norms, biases).

Structurally pruned heads and channels are already gone from the torch model's shapes, so they
are gone from the graph. Initializers keep the torch parameter's name (`<param>` for a float
weight, `<param>.qweight` / `<param>.scales` for a packed one), which is how the energy model
maps the executed graph back to the invocation counts (`frugal.runtime.executed_widths`).

Which widths are native was measured on this machine with ORT 1.32 (see NATIVE_BITS): linear
weights at 2 bits run on the 4-bit kernel's layout (the same resident bytes as 4 bits), so the
planner does not offer them.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from frugal.modeling import Classifier
from frugal.quantize import pack_codes, symmetric_codes
from frugal.runtime import FLOAT_BITS

MS_DOMAIN = "com.microsoft"
OPSET = 17
# Widths ONNX Runtime's CPU provider executes from packed storage, per kind of tensor.
NATIVE_BITS = {"linear": (0, 4, 8, FLOAT_BITS), "embedding": (2, 4, 8, FLOAT_BITS)}
# MatMulNBits accuracy_level: 4 = int8 activations (int8 MACs), 1 = float32 activations.
ACCURACY_LEVEL = {8: 4, FLOAT_BITS: 1}
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
_PREFIX = "m."  # the wrapper's attribute name, stripped from initializer names
# torch.onnx.export keeps global state: variants built in threads export one at a time.
_EXPORTING = threading.Lock()


class _Logits(torch.nn.Module):
    """(input_ids, attention_mask) -> logits: the graph's whole interface."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.m = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.m(input_ids=input_ids, attention_mask=attention_mask).logits


def kind_of(name: str) -> str:
    return "embedding" if name == WORD_EMBEDDINGS else "linear"


def check_native(bits: Mapping[str, int]) -> None:
    """Refuse a plan with a width the runtime would not execute as planned."""
    bad = {n: b for n, b in bits.items() if b not in NATIVE_BITS[kind_of(n)]}
    if bad:
        raise ValueError(
            f"widths ONNX Runtime does not execute natively: {bad}; allowed: {NATIVE_BITS}"
        )


def float_graph(clf: Classifier) -> onnx.ModelProto:
    """The classifier as a float ONNX graph, initializers named after torch parameters."""
    model = clf.model
    was_training = model.training
    wrapper = _Logits(model).eval()
    sample = clf.tokenizer(["a short example", "a"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    buffer = io.BytesIO()
    with _EXPORTING, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            wrapper,
            (sample["input_ids"], sample["attention_mask"]),
            buffer,
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=False,  # keeps weights as named initializers
        )
    model.train(was_training)  # the exporter leaves the wrapper (and model) in train mode
    graph = onnx.load_from_string(buffer.getvalue())
    # The exporter stores equal parameters once (two pruned, all-zero weights, say) and feeds
    # the others through Identity nodes: give each parameter its own initializer again.
    inits = {i.name: i for i in graph.graph.initializer}
    aliases = [n for n in graph.graph.node if n.op_type == "Identity" and n.input[0] in inits]
    for node in aliases:
        copy = onnx.TensorProto()
        copy.CopyFrom(inits[node.input[0]])
        copy.name = node.output[0]
        graph.graph.initializer.append(copy)
        graph.graph.node.remove(node)
    renamed = {}
    for init in graph.graph.initializer:
        if init.name.startswith(_PREFIX):
            renamed[init.name] = init.name.removeprefix(_PREFIX)
            init.name = renamed[init.name]
    for node in graph.graph.node:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    return graph


def _packed(weight: torch.Tensor, bits: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 blocks (rows, blocks, block_size * bits / 8), float32 scales (rows * blocks,)):
    MatMulNBits' layout; codes offset by 2^(bits-1), its default zero point."""
    codes, scale = symmetric_codes(weight.detach().float(), bits, block_size)
    rows, blocks = scale.shape
    padded = torch.zeros(rows, blocks * block_size)
    padded[:, : codes.shape[1]] = codes
    packed = pack_codes(padded + 1, bits)  # pack_codes offsets by 2^(b-1) - 1; zero point 2^(b-1)
    return (
        packed.numpy().reshape(rows, blocks, block_size * bits // 8),
        scale.numpy().astype(np.float32).reshape(-1),
    )


def export_onnx(
    clf: Classifier,
    bits: Mapping[str, int],
    path: Path,
    block_size: int,
    activation_bits: int = 8,
) -> Path:
    """Write `clf` as `path` (model.onnx) with each weight in `bits` executed at its width
    (module docstring). `clf`'s weights must hold their quantized values already."""
    check_native(bits)
    model = float_graph(clf)
    graph = model.graph
    params = dict(clf.model.named_parameters())
    inits = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    accuracy = ACCURACY_LEVEL[activation_bits if activation_bits == 8 else FLOAT_BITS]
    nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    dropped: set[str] = set()  # initializers and Transpose nodes no longer read

    def weight_of(node: onnx.NodeProto) -> str | None:
        """The parameter a MatMul / Gemm multiplies by (through the exporter's Transpose)."""
        source = node.input[1]
        transpose = producers.get(source)
        if node.op_type == "MatMul" and transpose is not None and transpose.op_type == "Transpose":
            name = transpose.input[0]
            if name in inits and name in params and params[name].dim() == 2:
                dropped.add(transpose.output[0])
                return name
        if node.op_type == "Gemm" and source in params:
            return source
        return None

    for node in graph.node:
        if node.op_type == "Gather" and node.input[0] == WORD_EMBEDDINGS:
            width = bits.get(WORD_EMBEDDINGS, FLOAT_BITS)
            if width != FLOAT_BITS:
                data, scales = _packed(params[WORD_EMBEDDINGS], width, block_size)
                rows = data.shape[0]
                new_inits += [
                    numpy_helper.from_array(data.reshape(rows, -1), f"{WORD_EMBEDDINGS}.qweight"),
                    numpy_helper.from_array(scales.reshape(rows, -1), f"{WORD_EMBEDDINGS}.scales"),
                ]
                dropped.add(WORD_EMBEDDINGS)
                nodes.append(
                    helper.make_node(
                        "GatherBlockQuantized",
                        [f"{WORD_EMBEDDINGS}.qweight", node.input[1], f"{WORD_EMBEDDINGS}.scales"],
                        list(node.output),
                        name=WORD_EMBEDDINGS,
                        domain=MS_DOMAIN,
                        bits=width,
                        block_size=block_size,
                        gather_axis=0,
                        quantize_axis=1,
                    )
                )
                continue
        name = weight_of(node) if node.op_type in ("MatMul", "Gemm") else None
        if name is None:
            nodes.append(node)
            continue
        weight = params[name]
        out_features, in_features = weight.shape
        width = bits.get(name, FLOAT_BITS)
        dropped.add(name)
        product = node.output[0] if node.op_type == "MatMul" else f"{name}.product"
        if width == FLOAT_BITS:
            new_inits.append(
                numpy_helper.from_array(weight.detach().float().numpy().T.copy(), f"{name}.T")
            )
            nodes.append(
                helper.make_node("MatMul", [node.input[0], f"{name}.T"], [product], name=name)
            )
        elif width == 0:  # pruned: nothing to read or multiply; the output is the bias alone
            nodes += [
                helper.make_node("Shape", [node.input[0]], [f"{name}.shape"], end=-1),
                helper.make_node("Concat", [f"{name}.shape", f"{name}.n"], [f"{name}.out_shape"], axis=0),
                helper.make_node("ConstantOfShape", [f"{name}.out_shape"], [product], name=name),
            ]  # fmt: skip
            new_inits.append(numpy_helper.from_array(np.array([out_features]), f"{name}.n"))
        else:
            data, scales = _packed(weight, width, block_size)
            new_inits += [
                numpy_helper.from_array(data, f"{name}.qweight"),
                numpy_helper.from_array(scales, f"{name}.scales"),
            ]
            nodes.append(
                helper.make_node(
                    "MatMulNBits",
                    [node.input[0], f"{name}.qweight", f"{name}.scales"],
                    [product],
                    name=name,
                    domain=MS_DOMAIN,
                    K=in_features,
                    N=out_features,
                    bits=width,
                    block_size=block_size,
                    accuracy_level=accuracy,
                )
            )
        if node.op_type == "Gemm":  # the head: Gemm(x, W, b) = x W^T + b
            nodes.append(helper.make_node("Add", [product, node.input[2]], list(node.output)))

    kept_nodes = [n for n in nodes if not (n.op_type == "Transpose" and n.output[0] in dropped)]
    kept_inits = [i for i in graph.initializer if i.name not in dropped] + new_inits
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
