"""Compressed models on disk, and running them for real.

A compressed model folder is a normal model folder (config, tokenizer, frugal.json) whose
`model.safetensors` stores each planned weight at its bit width: 2/4/8-bit weights as packed
codes (`<name>.codes`, 8 // bits per byte) with one float32 scale per output channel
(`<name>.scale`), 16-bit ones as float16, pruned (0-bit) ones not at all; a magnitude-pruned
(sparse) tensor stores a bit mask and the codes of its nonzero entries. `compression.json`
holds the bits and every tensor's shape (structured pruning stores smaller linear layers) and
the plan that chose them. Sizes on disk are therefore real.

Loading gives either the dequantized float model (what the energy model and the planner
analyse; weights equal the quantized values exactly) or the executable one, where every linear
layer with 2-8 bit weights runs as a real int8 kernel (torch.ao dynamic quantization: int8
weights per channel, activations quantized to 8 bits on the fly).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertConfig

from frugal.energy import FLOAT_BITS, WORKLOADS, DeviceProfile, WorkloadEnergy, model_energy
from frugal.errors import FrugalError
from frugal.modeling import META_FILE, Classifier, MeanPoolingClassifier, load_classifier
from frugal.quantize import INT_BITS, pack_codes, symmetric_codes, unpack_codes

PLAN_FILE = "compression.json"


def is_compressed(model_dir: Path) -> bool:
    return (Path(model_dir) / PLAN_FILE).is_file()


EXECUTIONS = ("int8", "float")


def save_compressed(
    clf: Classifier,
    bits: dict[str, int],
    out_dir: Path,
    plan: dict,
    execution: str = "int8",
    sparse: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Write `clf` with each weight in `bits` stored at its width (see the module docstring).
    The weights must already hold their quantized values (after `distill` or `apply_bits`)
    for the stored model to predict what the in-memory one does. `execution`: "int8" runs
    low-bit linear layers on int8 kernels; "float" keeps activations in float (weight-only).
    Tensors in `sparse` (magnitude-pruned) store a bit mask and the codes of their nonzero
    entries only."""
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be one of {EXECUTIONS}, got {execution!r}")
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
        elif width == 16:
            tensors[name] = value.to(torch.float16)
        elif width in INT_BITS:
            codes, scale = symmetric_codes(value, width)
            if name in sparse:
                kept = (value != 0).flatten()
                tensors[f"{name}.mask"] = torch.from_numpy(np.packbits(kept.numpy()))
                codes = codes.flatten()[kept]
            tensors[f"{name}.codes"] = pack_codes(codes, width)
            tensors[f"{name}.scale"] = scale.to(torch.float32).contiguous()
        elif width != 0:
            raise ValueError(f"{name}: cannot store {width} bits")
    save_file(tensors, str(out_dir / "model.safetensors"))
    clf.model.config.save_pretrained(out_dir)
    clf.tokenizer.save_pretrained(out_dir)
    meta = {"labels": clf.labels, "max_length": clf.max_length}
    (out_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    record = {
        "bits": bits,
        "shapes": shapes,  # all of them: structured pruning shrinks linear layers
        "execution": execution,
        "sparse": sorted(sparse),
        "plan": plan,
    }
    (out_dir / PLAN_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


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


def activation_bits(model_dir: Path) -> int:
    """Bits the model's MACs take their activations at: 8 where it runs int8 kernels, 32 for a
    full-precision or weight-only (float execution) model."""
    path = Path(model_dir) / PLAN_FILE
    if not path.is_file():
        return FLOAT_BITS
    execution = json.loads(path.read_text(encoding="utf-8"))["execution"]
    return 8 if execution == "int8" else FLOAT_BITS


def load_float(model_dir: Path) -> tuple[Classifier, dict[str, float]]:
    """The model with every weight dequantized to float32, and its stored bits per weight (a
    sparse tensor's include its mask: code bits × density + 1)."""
    model_dir = Path(model_dir)
    if not is_compressed(model_dir):
        return load_classifier(model_dir), {}
    record = json.loads((model_dir / PLAN_FILE).read_text(encoding="utf-8"))
    bits: dict[str, float] = {k: int(v) for k, v in record["bits"].items()}
    sparse = set(record.get("sparse", []))
    stored = load_file(str(model_dir / "model.safetensors"))
    model = MeanPoolingClassifier(BertConfig.from_pretrained(model_dir))
    _shrink_to(model, record["shapes"])
    state = model.state_dict()
    for name in state:
        width = bits.get(name, FLOAT_BITS)
        shape = tuple(record["shapes"].get(name, state[name].shape))
        if width == 0:
            state[name] = torch.zeros(shape)
        elif width in INT_BITS and name in sparse:
            n = int(torch.Size(shape).numel())
            kept = torch.from_numpy(np.unpackbits(stored[f"{name}.mask"].numpy())[:n].astype(bool))
            codes = torch.zeros(n)
            codes[kept] = unpack_codes(stored[f"{name}.codes"], width, (int(kept.sum()),))
            codes = codes.reshape(shape)
            scale = stored[f"{name}.scale"]
            state[name] = (codes.reshape(shape[0], -1) * scale[:, None]).reshape(shape)
            bits[name] = width * float(kept.float().mean()) + 1
        elif width in INT_BITS:
            codes = unpack_codes(stored[f"{name}.codes"], width, shape)
            scale = stored[f"{name}.scale"]
            state[name] = (codes.reshape(shape[0], -1) * scale[:, None]).reshape(shape)
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
    """Modeled energy of a saved model (full precision or compressed, priced at its stored bits
    and the activation precision it executes with) over `texts`."""
    clf, bits = load_float(model_dir)
    return model_energy(
        clf.model,
        clf.tokenizer,
        texts,
        clf.max_length,
        profiles,
        bits,
        workloads,
        activation_bits(model_dir),
    )


class PrunedLinear(torch.nn.Module):
    """A linear layer whose weight was pruned (0 bits): nothing to read or multiply, its output
    is its bias."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.out_features = linear.out_features
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (*x.shape[:-1], self.out_features)
        return self.bias.expand(shape) if self.bias is not None else x.new_zeros(shape)


def int8_execution(clf: Classifier, bits: dict[str, float]) -> Classifier:
    """A copy of `clf` that executes as deployed: every linear layer whose weights have 2-8 bits
    on a real int8 kernel (per-channel int8 weights, activations quantized dynamically), every
    pruned one skipped (its bias only)."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    linear = {n for n, m in clf.model.named_modules() if isinstance(m, torch.nn.Linear)}
    spec = {
        module: per_channel_dynamic_qconfig
        for name, width in bits.items()
        if 0 < width <= 8 and (module := name.removesuffix(".weight")) in linear
    }
    model = (
        quantize_dynamic(clf.model, qconfig_spec=spec, dtype=torch.qint8)
        if spec
        else copy.deepcopy(clf.model)
    )
    for name, width in bits.items():
        module = name.removesuffix(".weight")
        if width == 0 and module in linear:
            parent, _, child = module.rpartition(".")
            setattr(
                model.get_submodule(parent),
                child,
                PrunedLinear(getattr(model.get_submodule(parent), child)),
            )
    return Classifier(model, clf.tokenizer, clf.labels, clf.max_length)


def load_executable(model_dir: Path) -> Classifier:
    """What serves requests: full-precision models as they are, compressed ones with their
    low-bit linear layers on int8 kernels (unless saved for float, weight-only, execution)."""
    clf, bits = load_float(model_dir)
    if not bits:
        return clf
    record = json.loads((Path(model_dir) / PLAN_FILE).read_text(encoding="utf-8"))
    return int8_execution(clf, bits) if record["execution"] == "int8" else clf
