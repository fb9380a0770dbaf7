"""Export a classifier to ONNX so that ONNX Runtime executes every planned width natively, on a
graph its transformer fusions have already optimized.

Three passes, the order that keeps the fusions (`export_onnx`):

1. `float_graph`: the torch model exported in float (the TorchScript exporter, with the eager
   attention path that ONNX Runtime's attention fusion recognises), every linear layer as
   `MatMul(x, <param>.T)` over a pre-transposed initializer named after the torch parameter.
2. `fused_graph`: ONNX Runtime's transformer optimizer (`model_type="bert"`, python fusions
   only, so the file stays portable) fuses attention into MultiHeadAttention (which keeps the
   query / key / value MatMuls apart, so each keeps its own width), Add + LayerNorm into
   SkipLayerNormalization and bias + GELU into BiasGelu. The embedding is left unfused: the
   fused EmbedLayerNormalization reads a float table, and the table is a planned tensor.
3. Each planned weight rewritten to the kernel that runs its width from packed storage on the
   CPU execution provider (`frugal.model.runtime.KERNEL_OF`):
   * 8 bits -> `DynamicQuantizeMatMul` (com.microsoft): int8 weight, one float32 scale per
     output channel; the input quantized per tensor to uint8 on every call. The fastest int8
     path at these shapes, the one `quantize_dynamic` ends in;
   * 4 bits -> `MatMulNBits` (com.microsoft): block-wise packed codes, one float32 scale per
     block; `accuracy_level` 4 quantizes the input to int8 per block (int8 MACs);
   * 0 bits (pruned) -> no weight at all: the layer's output is its bias alone;
   * the word-embedding table at 2, 4 or 8 bits -> `GatherBlockQuantized` (com.microsoft);
   * everything else stays float32 `MatMul`.

Structurally pruned heads and channels are already gone from the torch model's shapes, so they
are gone from the graph. Initializers keep the torch parameter's name (`<param>.T` for a float
weight, `<param>.qweight` / `<param>.scales` for a packed one), which is how the energy model
maps the executed graph back to the invocation counts (`frugal.model.runtime.executed_widths`).

Linear weights at 2 bits run on the 4-bit kernel's layout (the same resident bytes as 4 bits,
measured with ORT 1.32), so the planner does not offer them (`frugal.model.runtime.NATIVE_BITS`).
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper

from frugal.files import write_json
from frugal.model.modeling import META_FILE, Classifier
from frugal.model.quantize import block_of, pack_codes, symmetric_codes
from frugal.model.runtime import (
    ACCURACY_LEVEL,
    FLOAT_BITS,
    FUSED_QKV_BIAS,
    WORD_EMBEDDINGS,
    check_native,
)

MS_DOMAIN = "com.microsoft"
OPSET = 17
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


@contextmanager
def _eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """The eager attention path while exporting: its MatMul / Softmax pattern is what ONNX
    Runtime's attention fusion matches (the SDPA path exports a graph it does not)."""
    config = model.config
    previous = config._attn_implementation
    config._attn_implementation = "eager"
    try:
        yield
    finally:
        config._attn_implementation = previous


def float_graph(clf: Classifier) -> onnx.ModelProto:
    """The classifier as a float ONNX graph: every linear layer `MatMul(x, <param>.T)` (+ its
    bias), other initializers named after their torch parameters."""
    model = clf.model
    was_training = model.training
    wrapper = _Logits(model).eval()
    sample = clf.tokenizer(["a short example", "a"], padding=True, return_tensors="pt")
    axes = {0: "batch", 1: "tokens"}
    buffer = io.BytesIO()
    with _EXPORTING, _eager_attention(model), warnings.catch_warnings(), torch.no_grad():
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
    return _pretransposed(graph, dict(model.named_parameters()))


def _pretransposed(model: onnx.ModelProto, params: Mapping[str, torch.Tensor]) -> onnx.ModelProto:
    """Every linear layer as `MatMul(x, <param>.T)` over a pre-transposed initializer, the
    head's Gemm as MatMul + Add: the form both the fusions and the low-bit rewrite read."""
    graph = model.graph
    inits = {i.name for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    dropped: set[str] = set()
    for node in graph.node:
        name = None
        if node.op_type == "MatMul":
            transpose = producers.get(node.input[1])
            if transpose is not None and transpose.op_type == "Transpose":
                candidate = transpose.input[0]
                if candidate in inits and candidate in params and params[candidate].dim() == 2:
                    name = candidate
                    dropped.add(transpose.output[0])
        elif node.op_type == "Gemm" and node.input[1] in params:
            name = node.input[1]
        if name is None:
            nodes.append(node)
            continue
        dropped.add(name)
        weight = params[name].detach().float().numpy().T.copy()
        new_inits.append(numpy_helper.from_array(weight, f"{name}.T"))
        product = node.output[0] if node.op_type == "MatMul" else f"{name}.product"
        nodes.append(helper.make_node("MatMul", [node.input[0], f"{name}.T"], [product], name=name))
        if node.op_type == "Gemm":  # the head: Gemm(x, W, b) = x W^T + b
            nodes.append(helper.make_node("Add", [product, node.input[2]], list(node.output)))
    kept = [n for n in nodes if not (n.op_type == "Transpose" and n.output[0] in dropped)]
    del graph.node[:]
    graph.node.extend(kept)
    kept_inits = [i for i in graph.initializer if i.name not in dropped] + new_inits
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    return model


def fused_graph(model: onnx.ModelProto, heads: int, head_size: int) -> onnx.ModelProto:
    """ONNX Runtime's transformer fusions on a float graph of `float_graph` (module docstring):
    MultiHeadAttention, SkipLayerNormalization, BiasGelu. `heads`: attention heads in every
    layer (the exported reshapes are dynamic, so the optimizer cannot read it from the graph);
    0 when layers differ (structured pruning), which leaves attention unfused. Each attention's
    packed query / key / value bias is renamed `<layer>.attention.self.qkv_bias` so the energy
    model can still map it to the three torch biases."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.use_multi_head_attention = True  # query, key and value keep their own MatMuls
    options.enable_embed_layer_norm = False  # the word-embedding table is a planned tensor
    options.enable_attention = heads > 0
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    optimized = optimize_model(
        model, model_type="bert", num_heads=heads, hidden_size=heads * head_size,
        optimization_options=options,
        opt_level=0,  # the python fusions only: the file stays portable across ORT builds
    ).model  # fmt: skip
    renamed = {}
    for node in optimized.graph.node:
        if node.op_type == "MultiHeadAttention" and len(node.input) > 3 and node.input[3]:
            query = node.input[0]  # the query MatMul's output
            producer = next(n for n in optimized.graph.node if query in n.output)
            layer = producer.input[1].removesuffix(".query.weight.T")
            renamed[node.input[3]] = f"{layer}{FUSED_QKV_BIAS}"
    for init in optimized.graph.initializer:
        init.name = renamed.get(init.name, init.name)
    for node in optimized.graph.node:
        node.input[:] = [renamed.get(i, i) for i in node.input]
    return optimized


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


def lower_matmul(
    name: str,
    weight: torch.Tensor,
    width: int,
    node: onnx.NodeProto,
    block_size: int,
    accuracy: int,
) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The nodes and initializers that compute `node` (MatMul(x, <name>.T)) with its weight at
    `width` on the kernel of `KERNEL_OF`."""
    out_features, in_features = weight.shape
    x, product = node.input[0], node.output[0]
    if width == 0:  # pruned: nothing to read or multiply; the output is the bias alone
        return [
            helper.make_node("Shape", [x], [f"{name}.shape"], end=-1),
            helper.make_node("Concat", [f"{name}.shape", f"{name}.n"], [f"{name}.out_shape"], axis=0),
            helper.make_node("ConstantOfShape", [f"{name}.out_shape"], [product], name=name),
        ], [numpy_helper.from_array(np.array([out_features]), f"{name}.n")]  # fmt: skip
    if width == 8:  # int8 per output channel; the input quantized per call (uint8, per tensor)
        codes, scale = symmetric_codes(weight.detach().float(), 8, block_of(name, 8, block_size))
        inits = [
            numpy_helper.from_array(codes.numpy().astype(np.int8).T.copy(), f"{name}.qweight"),
            numpy_helper.from_array(scale.numpy().astype(np.float32).reshape(-1), f"{name}.scales"),
            numpy_helper.from_array(np.zeros(out_features, np.int8), f"{name}.zero_points"),
        ]
        inputs = [x, f"{name}.qweight", f"{name}.scales", f"{name}.zero_points"]
        return [
            helper.make_node(
                "DynamicQuantizeMatMul", inputs, [product], name=name, domain=MS_DOMAIN
            )
        ], inits
    data, scales = _packed(weight, width, block_size)
    return [
        helper.make_node(
            "MatMulNBits",
            [x, f"{name}.qweight", f"{name}.scales"],
            [product],
            name=name,
            domain=MS_DOMAIN,
            K=in_features,
            N=out_features,
            bits=width,
            block_size=block_size,
            accuracy_level=accuracy,
        )
    ], [
        numpy_helper.from_array(data, f"{name}.qweight"),
        numpy_helper.from_array(scales, f"{name}.scales"),
    ]


def lower_widths(
    model: onnx.ModelProto,
    params: Mapping[str, torch.Tensor],
    bits: Mapping[str, int],
    block_size: int,
    activation_bits: int = 8,
) -> onnx.ModelProto:
    """`model` (from `float_graph`, fused or not) with each weight in `bits` on the kernel of
    its width (module docstring); weights not in `bits` stay float."""
    check_native(bits, activation_bits)
    graph = model.graph
    accuracy = ACCURACY_LEVEL[activation_bits if activation_bits == 8 else FLOAT_BITS]
    nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    dropped: set[str] = set()  # initializers no longer read
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
        name = node.input[1].removesuffix(".T") if node.op_type == "MatMul" else None
        width = bits.get(name, FLOAT_BITS) if name in params else FLOAT_BITS
        if width == FLOAT_BITS:
            nodes.append(node)
            continue
        lowered, inits = lower_matmul(name, params[name], width, node, block_size, accuracy)
        nodes += lowered
        new_inits += inits
        dropped.add(f"{name}.T")
    del graph.node[:]
    graph.node.extend(nodes)
    kept_inits = [i for i in graph.initializer if i.name not in dropped] + new_inits
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return model


def export_onnx(
    clf: Classifier,
    bits: Mapping[str, int],
    path: Path,
    block_size: int,
    activation_bits: int = 8,
) -> Path:
    """Write `clf` as `path` (model.onnx): exported, fused, then each weight in `bits` on the
    kernel of its width (module docstring). `clf`'s weights must hold their quantized values
    already."""
    check_native(bits, activation_bits)
    layers = [layer.attention.self for layer in clf.model.bert.encoder.layer]
    heads = {attention.num_attention_heads for attention in layers}
    fused = fused_graph(
        float_graph(clf), heads.pop() if len(heads) == 1 else 0, layers[0].attention_head_size
    )
    model = lower_widths(
        fused, dict(clf.model.named_parameters()), bits, block_size, activation_bits
    )
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def save_classifier(clf: Classifier, out_dir: Path) -> None:
    """Write safetensors weights, config, tokenizer, frugal.json and the served graph
    (model.onnx, float32: `export_onnx`) into `out_dir`.

    Written to a sibling folder first and swapped in at the end: an interrupted save leaves
    the previous model in place, never a half-written one.
    """
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    clf.model.save_pretrained(staging, safe_serialization=True)
    clf.tokenizer.save_pretrained(staging)
    meta = {"labels": clf.labels, "max_length": clf.max_length}
    write_json(meta, staging / META_FILE)
    export_onnx(clf, {}, staging / "model.onnx", block_size=64)  # float: no block is used
    previous = out_dir.with_name(out_dir.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(previous)
    staging.rename(out_dir)
    shutil.rmtree(previous, ignore_errors=True)
