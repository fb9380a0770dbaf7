"""The one runtime that serves, evaluates and profiles models: ONNX Runtime (CPU provider),
and the one home of what it executes: the widths it runs natively per kind of tensor
(`NATIVE_BITS`), the kernel of each width (`KERNEL_OF`) and, read back from a served graph,
the width of every weight (`executed_widths`).

Every model folder (the base model and each compressed variant) holds `model.onnx` (written by
`frugal.model.export`), its tokenizer (`tokenizer.json`) and `frugal.json` (labels, max length).
Nothing here imports torch: a served model costs the memory of ONNX Runtime, the tokenizer and
its own weights, not of a training framework.

`executed_widths` reads, from the graph itself, the width at which the runtime reads every
weight on each forward pass; the energy model prices those widths, never the plan's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from tokenizers import Tokenizer

from frugal.errors import FrugalError

ONNX_FILE = "model.onnx"
META_FILE = "frugal.json"
PLAN_FILE = "compression.json"
FLOAT_BITS = 32
# Resident width of MatMulNBits' packed weights, measured with ORT 1.32 on this CPU (AVX-512
# VNNI): a 4096 x 4096 weight added 20.0 MB at 2 bits, 20.9 MB at 4 and 28.9 MB at 8 (the
# kernel repacks 2-bit weights to its 4-bit layout), so a 2-bit linear weight is read as a
# 4-bit one. GatherBlockQuantized keeps 2, 4 and 8 bits as stored.
MATMUL_NBITS_EXECUTED = {2: 4, 4: 4, 8: 8}
# A fused MultiHeadAttention's packed query / key / value bias: `<layer>.attention.self` + this.
FUSED_QKV_BIAS = ".qkv_bias"
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"  # the one planned non-linear tensor
# Widths ONNX Runtime's CPU provider executes from packed storage, per kind of tensor.
NATIVE_BITS = {"linear": (0, 4, 8, FLOAT_BITS), "embedding": (2, 4, 8, FLOAT_BITS)}
# The kernel that runs each linear width (0: none, the layer is gone).
KERNEL_OF = {FLOAT_BITS: "MatMul", 8: "DynamicQuantizeMatMul", 4: "MatMulNBits", 0: None}
# MatMulNBits accuracy_level: 4 = int8 activations (int8 MACs), 1 = float32 activations.
ACCURACY_LEVEL = {8: 4, FLOAT_BITS: 1}  # MatMulNBits: int8 (4) or float (1) activations


@dataclass(frozen=True)
class Executed:
    """How the runtime executes one weight tensor of the torch model."""

    bits: int  # bits read per weight on every forward pass (0: not in the graph, pruned)
    mac_bits: int  # operand width of its multiply-accumulates (8: int8 kernel, 32: float)
    scale_bytes: int  # float32 block scales read with it (whole tensor)
    block_size: int  # 0 for an unquantized tensor
    op: str


def kind_of(name: str) -> str:
    return "embedding" if name == WORD_EMBEDDINGS else "linear"


def check_native(bits: Mapping[str, int], activation_bits: int = 8) -> None:
    """Refuse a plan with a width the runtime would not execute as planned."""
    bad = {n: b for n, b in bits.items() if b not in NATIVE_BITS[kind_of(n)]}
    if bad:
        raise ValueError(
            f"widths ONNX Runtime does not execute natively: {bad}; allowed: {NATIVE_BITS}"
        )
    if activation_bits != 8:
        weight_only = {n: b for n, b in bits.items() if kind_of(n) == "linear" and b == 8}
        if weight_only:
            raise ValueError(
                f"8-bit linear weights run on DynamicQuantizeMatMul, which quantizes its input: "
                f"no float-activation kernel for {sorted(weight_only)[:3]}; plan 4 bits instead"
            )


def _fix(model_dir: Path) -> str:
    return f"re-export it: `dvc repro --force {'compress' if 'compressed' in str(model_dir) else 'train'}`"


def load_graph(model_dir: Path) -> onnx.ModelProto:
    """The model folder's ONNX graph, with a clear error when it is missing or broken."""
    path = Path(model_dir) / ONNX_FILE
    if not path.is_file():
        raise FrugalError(f"{path}: missing; every model folder serves from it: {_fix(model_dir)}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises DecodeError, ValidationError, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FrugalError(f"{path}: not a valid ONNX model ({first}); {_fix(model_dir)}") from None
    return model


def executed_widths(model: onnx.ModelProto) -> dict[str, Executed]:
    """Torch parameter name -> how the graph executes it (module docstring). Parameters the
    graph never reads are absent (pruned). Understands this project's export (initializers named
    `<param>`, `<param>.T`, `<param>.qweight` / `.scales`) and onnxruntime's quantize_dynamic
    output (`<param>.T_quantized`, `_scale`, `_zero_point`)."""
    inits = {i.name: i for i in model.graph.initializer}

    def size(name: str) -> int:
        return int(np.prod(inits[name].dims)) * 4 if name in inits else 0

    out: dict[str, Executed] = {}
    claimed: set[str] = set()
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in ("MatMulNBits", "GatherBlockQuantized"):
            weight = node.input[1 if node.op_type == "MatMulNBits" else 0]
            param = weight.removesuffix(".qweight")
            scales = node.input[2]
            bits = int(attrs["bits"])
            if node.op_type == "MatMulNBits":
                executed = MATMUL_NBITS_EXECUTED[bits]
                mac_bits = 8 if int(attrs.get("accuracy_level", 0)) == 4 else FLOAT_BITS
            else:
                executed, mac_bits = bits, FLOAT_BITS  # a lookup: no multiply-accumulates
            out[param] = Executed(
                executed, mac_bits, size(scales), int(attrs["block_size"]), node.op_type
            )
            claimed.update({weight, scales})
        elif node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul"):
            # this project's export (`<param>.qweight`, per-channel `.scales`) or
            # quantize_dynamic's (`<param>.T_quantized`, `_scale`)
            weight = node.input[1]
            param = weight.removesuffix(".qweight").removesuffix("_quantized").removesuffix(".T")
            scales = (
                node.input[2]
                if node.op_type == "DynamicQuantizeMatMul"
                else weight.removesuffix("_quantized") + "_scale"  # the Mul after MatMulInteger
            )
            out[param] = Executed(8, 8, size(scales), 0, node.op_type)
            claimed.update({weight, scales})
        elif node.op_type in ("Gather", "DequantizeLinear") and node.input[0].endswith(
            "_quantized"
        ):
            weight = node.input[0]
            param = weight.removesuffix("_quantized").removesuffix(".T")
            out[param] = Executed(8, FLOAT_BITS, 4, 0, node.op_type)
            claimed.add(weight)
    for name, init in inits.items():
        if name in claimed or init.data_type != onnx.TensorProto.FLOAT:
            continue
        params = [name.removesuffix(".T")]
        if name.endswith(FUSED_QKV_BIAS):
            layer = name.removesuffix(FUSED_QKV_BIAS)
            params = [f"{layer}.{part}.bias" for part in ("query", "key", "value")]
        for param in params:
            if param not in out:
                out[param] = Executed(FLOAT_BITS, FLOAT_BITS, 0, 0, "float")
    return out


def length_order(texts: list[str]) -> np.ndarray:
    """Indices of `texts` by length (characters, a stable sort): batches of similar lengths
    pad little, about half the tokens of a random batch of short questions. Inference only:
    the results go back to the input order with `in_input_order`."""
    return np.argsort([len(text) for text in texts], kind="stable")


def in_input_order(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """`rows` computed on `texts[order]`, put back in the order of `texts`."""
    out = np.empty_like(rows)
    out[order] = rows
    return out


class OnnxClassifier:
    """A model folder served by ONNX Runtime: texts in, class probabilities out."""

    def __init__(self, model_dir: Path, threads: int = 2) -> None:
        model_dir = Path(model_dir)
        path = model_dir / ONNX_FILE
        if not path.is_file():
            raise FrugalError(
                f"{path}: missing; every model folder serves from it: {_fix(model_dir)}"
            )
        meta_path = model_dir / META_FILE
        if not meta_path.is_file():
            raise FrugalError(f"{meta_path}: missing (labels and max length); {_fix(model_dir)}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        self.labels: list[str] = meta["labels"]
        self.max_length: int = meta["max_length"]
        self.model_dir = model_dir
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:  # from the file: no second in-memory copy of the weights while loading
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ORT raises its own Fail / InvalidProtobuf types
            first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            raise FrugalError(
                f"{path}: not a valid ONNX model ({first}); {_fix(model_dir)}"
            ) from None
        if (model_dir / PLAN_FILE).is_file():  # a compressed model must run its plan
            check_plan(model_dir, load_graph(model_dir))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        pad = self.tokenizer.token_to_id("[PAD]") or 0
        self.tokenizer.enable_padding(pad_id=pad, pad_token="[PAD]")

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        batch = self.tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in batch], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
        }

    def logits(self, texts: list[str]) -> np.ndarray:
        return self.session.run(["logits"], self.encode(texts))[0]

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(labels))."""
        order = length_order(texts)  # similar lengths pad little
        by_length = [texts[i] for i in order]
        chunks = []
        for start in range(0, len(texts), batch_size):
            logits = self.logits(by_length[start : start + batch_size]).astype(np.float64)
            logits -= logits.max(axis=1, keepdims=True)
            probs = np.exp(logits)
            chunks.append((probs / probs.sum(axis=1, keepdims=True)).astype(np.float32))
        if not chunks:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return in_input_order(np.concatenate(chunks), order)


def check_plan(model_dir: Path, graph: onnx.ModelProto) -> None:
    """A compressed folder's graph must execute its plan: every planned width as planned."""
    plan_path = Path(model_dir) / PLAN_FILE
    if not plan_path.is_file():
        return
    planned = json.loads(plan_path.read_text(encoding="utf-8"))["bits"]
    executed = executed_widths(graph)
    wrong = {
        name: (bits, executed[name].bits if name in executed else 0)
        for name, bits in planned.items()
        if (executed[name].bits if name in executed else 0) != int(bits)
    }
    if wrong:
        shown = ", ".join(f"{n}: planned {p}, runs {e}" for n, (p, e) in list(wrong.items())[:3])
        raise FrugalError(
            f"{Path(model_dir) / ONNX_FILE} does not match its plan in {plan_path.name} "
            f"({len(wrong)} tensors; {shown}); {_fix(model_dir)}"
        )
