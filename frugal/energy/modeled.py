"""Modeled energy per inference from a memory-hierarchy model with measured invocation counts.

Energy per request = Σ tensors (bytes read × pJ per byte of the memory level it sits in)
                   + Σ operations (MACs × pJ per MAC at the operation's precision).

Why it is built this way (design §5):

* Invocation counts are measured: forward hooks count, over a real workload, how often each
  module runs and how many rows it touches (tokens through a linear layer, lookups in an
  embedding table). A linear layer's weights are read once per call (reused across the call's
  tokens); an embedding table reads only the rows of the tokens looked up, so its cost follows
  tokens seen, not table size. Counts depend on a request's token length only, so each
  distinct length runs once and is multiplied by its requests: counting a workload takes at
  most `max_length` forward passes, however many words its texts have.
* Placement is solved: given a device's on-chip SRAM, the tensors kept resident are a 0/1
  knapsack (scipy's `milp`) maximising the energy saved per request (bytes read × (DRAM - SRAM)
  pJ/byte) within the capacity; the rest stream from DRAM on every read. Fewer bits per tensor
  shrink it, so a compressed tensor can move on chip.
* Widths are the executed ones: `frugal.model.runtime.executed_widths` reads each weight's bits, the
  precision of its MACs and its block scales from the ONNX graph that serves; scales are read
  with their weights and count in size. A MAC is priced at the profile's nearest width at least
  as wide as its operands (an int8 MAC includes its int32 accumulation: see params.yaml).
* Also charged: the attention score and value products (activation × activation, float32 in
  ONNX Runtime), and on-chip SRAM reserved for the activations of the longest request, which
  weights cannot use.

Pure: torch modules in, numbers out; no Prefect, no MLflow, no files.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from frugal.config import DeviceProfileConfig
from frugal.model.quantize import block_of, scale_count
from frugal.model.runtime import FLOAT_BITS

WORKLOADS = ("batch", "streaming")


@dataclass(frozen=True)
class DeviceProfile:
    """Energy constants of one device; `source` says where every number comes from."""

    name: str
    sram_bytes: int
    dram_pj_per_byte: float
    sram_pj_per_byte: float
    mac_pj: Mapping[int, float]  # operand bits -> pJ per multiply-accumulate
    source: str

    def mac_energy_pj(self, bits: int) -> float:
        """pJ per MAC for operands of `bits`: the cheapest priced unit at least that wide."""
        wide_enough = [b for b in self.mac_pj if b >= bits]
        return float(
            self.mac_pj[min(wide_enough)] if wide_enough else self.mac_pj[max(self.mac_pj)]
        )


def device_profile(name: str, cfg: DeviceProfileConfig) -> DeviceProfile:
    return DeviceProfile(
        name, cfg.sram_bytes, cfg.dram_pj_per_byte, cfg.sram_pj_per_byte, cfg.mac_pj, cfg.source
    )


def reserve(profile: DeviceProfile, activation_bytes: float) -> DeviceProfile:
    """`profile` with `activation_bytes` of its SRAM held for activations, not weights."""
    return dataclasses.replace(
        profile, sram_bytes=max(0, int(profile.sram_bytes - activation_bytes))
    )


class Width(Protocol):
    """How one weight executes (`frugal.model.runtime.Executed`)."""

    bits: int
    mac_bits: int
    scale_bytes: int


@dataclass
class ModuleCounts:
    calls: int = 0  # forward calls
    rows: int = 0  # tokens through a linear / norm layer, or lookups in an embedding table
    token_pairs: int = 0  # linear layers: Σ over sequences of tokens² (attention's products)
    max_tokens: int = 0  # linear layers: the longest sequence seen


def count_invocations(
    model: torch.nn.Module, run_workload: Callable[[], None]
) -> dict[str, ModuleCounts]:
    """Calls and rows of every module that owns parameters, while `run_workload()` runs."""
    counts: dict[str, ModuleCounts] = {}
    handles = []

    def hook(name: str, module: torch.nn.Module):
        def record(_module: torch.nn.Module, inputs: tuple, _output: object) -> None:
            entry = counts.setdefault(name, ModuleCounts())
            entry.calls += 1
            first = inputs[0] if inputs else None
            if not isinstance(first, torch.Tensor):
                return
            if isinstance(module, torch.nn.Embedding):
                entry.rows += first.numel()
            elif isinstance(module, torch.nn.Linear):
                entry.rows += first.numel() // module.in_features
                if first.dim() == 3:  # (sequences, tokens, features)
                    entry.token_pairs += first.shape[0] * first.shape[1] ** 2
                    entry.max_tokens = max(entry.max_tokens, first.shape[1])
            elif isinstance(module, torch.nn.LayerNorm):
                entry.rows += first.numel() // int(np.prod(module.normalized_shape))

        return record

    for name, module in model.named_modules():
        if any(True for _ in module.parameters(recurse=False)):
            handles.append(module.register_forward_hook(hook(name, module)))
    try:
        with torch.inference_mode():
            run_workload()
    finally:
        for handle in handles:
            handle.remove()
    return counts


@dataclass(frozen=True)
class TensorCost:
    """What one weight tensor costs per request, before placement."""

    name: str  # parameter name, e.g. bert.encoder.layer.0.attention.self.query.weight
    module: str
    n_elements: int
    bits: int
    bytes_read: float  # per request
    macs: float  # per request, charged to this tensor
    mac_bits: int = FLOAT_BITS  # operand width of its MACs, as executed
    scale_bytes: float = 0.0  # its float32 block scales (stored and read with it)
    rows: int = 1  # output channels (linear) or table rows (embedding): scales are per row

    @property
    def size_bytes(self) -> float:
        return self.n_elements * self.bits / 8 + self.scale_bytes


ATTENTION_PRODUCTS = "attention.products"  # pseudo-tensor: QK^T and scores × V of a layer


def tensor_costs(
    model: torch.nn.Module,
    counts: Mapping[str, ModuleCounts],
    n_requests: int,
    executed: Mapping[str, Width] | None = None,
) -> list[TensorCost]:
    """Per-request reads and MACs of every parameter tensor at its executed width (`executed`:
    parameter name -> width, from the served graph; a parameter absent from it is pruned;
    `None`: everything float32).

    Linear weights (and their scales) are read once per call and do rows × in × out MACs;
    biases and norm parameters are read once per call (norms do one MAC per element); an
    embedding table reads one row (and its scales) per lookup. Each attention block also does
    2 × tokens² × width MACs (scores and their product with the values), float32. A tensor
    whose module never ran, or that is pruned, costs nothing.
    """
    if n_requests < 1:
        raise ValueError("n_requests must be >= 1")
    costs = []
    for module_name, module in model.named_modules():
        usage = counts.get(module_name, ModuleCounts())
        calls, rows = usage.calls / n_requests, usage.rows / n_requests
        for param_name, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{param_name}" if module_name else param_name
            if executed is None:
                width, mac_bits, scales = FLOAT_BITS, FLOAT_BITS, 0.0
            elif name in executed:
                e = executed[name]
                width, mac_bits, scales = e.bits, e.mac_bits, float(e.scale_bytes)
            else:
                width, mac_bits, scales = 0, FLOAT_BITS, 0.0
            n_rows = int(param.shape[0]) if param.dim() == 2 else 1
            size = param.numel() * width / 8 + scales
            macs = 0.0
            if isinstance(module, torch.nn.Embedding):
                read = rows * (module.embedding_dim * width / 8 + scales / n_rows)
            else:
                read = calls * size
                if isinstance(module, torch.nn.Linear) and param_name == "weight":
                    macs = rows * module.in_features * module.out_features
                elif isinstance(module, torch.nn.LayerNorm) and param_name == "weight":
                    macs = rows * param.numel()
            if width == 0:  # pruned: not stored, not read, not multiplied
                macs = 0.0
            costs.append(
                TensorCost(
                    name, module_name, param.numel(), width, read, macs, mac_bits, scales, n_rows
                )
            )
        if module_name.endswith("attention.self") and hasattr(module, "query"):
            pairs = counts.get(f"{module_name}.query", ModuleCounts()).token_pairs
            macs = 2 * pairs * module.query.out_features / n_requests
            costs.append(
                TensorCost(
                    f"{module_name}.{ATTENTION_PRODUCTS}", module_name, 0, FLOAT_BITS, 0.0, macs
                )
            )
    return costs


def activation_bytes(model: torch.nn.Module, counts: Mapping[str, ModuleCounts]) -> float:
    """SRAM the activations of the longest request need while one encoder layer runs (float32):
    its input, query / key / value, attention output, feed-forward activations and the
    heads × tokens² attention scores."""
    config = model.config
    tokens = max((c.max_tokens for c in counts.values()), default=0)
    hidden, inner = config.hidden_size, config.intermediate_size
    per_token = 5 * hidden + inner
    return 4.0 * (tokens * per_token + config.num_attention_heads * tokens**2)


def with_bits(
    costs: list[TensorCost],
    bits: Mapping[str, int],
    activation_bits: int,
    block_size: int,
) -> list[TensorCost]:
    """Full-precision costs re-priced as the runtime would execute `bits` per tensor (what the
    planner predicts; `frugal.model.export` makes the graph execute exactly this): reads scale with
    the width plus one float32 scale per block, a quantized linear layer multiplies at
    `activation_bits` (8: int8 kernels) and a pruned (0-bit) tensor does nothing."""
    if any(c.bits != FLOAT_BITS for c in costs):
        raise ValueError("with_bits re-prices full-precision (32-bit) costs only")
    priced = []
    for c in costs:
        width = bits.get(c.name, FLOAT_BITS)
        if width in (0, FLOAT_BITS):
            scales, mac_bits = 0.0, FLOAT_BITS
        else:
            block = block_of(c.name, width, block_size)
            scales = 4.0 * scale_count((c.rows, c.n_elements // c.rows), block)
            mac_bits = 8 if activation_bits == 8 and c.macs > 0 else FLOAT_BITS
        per_read = c.bytes_read * width / FLOAT_BITS
        if c.n_elements and c.bytes_read:
            # reads per request × scales per read: whole tensor (linear) or row share (embedding)
            full_reads = c.bytes_read / (c.n_elements * 4)
            per_read += full_reads * scales
        priced.append(
            TensorCost(
                c.name,
                c.module,
                c.n_elements,
                width,
                per_read,
                c.macs if width > 0 else 0.0,
                mac_bits,
                scales,
                c.rows,
            )
        )
    return priced


def place_in_sram(costs: list[TensorCost], profile: DeviceProfile) -> set[str]:
    """Names of the tensors to keep on chip: the 0/1 knapsack of energy saved per request
    (bytes read × (DRAM - SRAM) pJ/byte) within `profile.sram_bytes`."""
    candidates = [c for c in costs if c.bytes_read > 0 and c.size_bytes <= profile.sram_bytes]
    if not candidates:
        return set()
    sizes = np.array([c.size_bytes for c in candidates])
    if sizes.sum() <= profile.sram_bytes:
        return {c.name for c in candidates}
    saved = np.array([c.bytes_read for c in candidates]) * (
        profile.dram_pj_per_byte - profile.sram_pj_per_byte
    )
    result = milp(
        c=-saved,
        constraints=linear_constraint(sizes[None, :], -np.inf, profile.sram_bytes),
        integrality=np.ones(len(candidates)),
        bounds=Bounds(0, 1),
    )
    if not result.success:
        raise RuntimeError(f"SRAM placement failed: {result.message}")
    return {c.name for c, keep in zip(candidates, result.x, strict=True) if keep > 0.5}


@dataclass(frozen=True)
class TensorEnergy:
    name: str
    module: str
    component: str  # embeddings / attention / feed_forward / norm / head
    layer: str  # embeddings / layer.N / head
    memory: str  # "sram" or "dram"
    bits: int
    size_bytes: float
    read_pj: float
    compute_pj: float

    @property
    def total_pj(self) -> float:
        return self.read_pj + self.compute_pj


@dataclass(frozen=True)
class EnergyReport:
    profile: str
    tensors: list[TensorEnergy] = field(default_factory=list)

    @property
    def total_pj(self) -> float:
        return sum(t.total_pj for t in self.tensors)

    def table(self) -> pd.DataFrame:
        """One row per tensor: pJ per request split by memory level and compute."""
        return pd.DataFrame(
            {
                "tensor": [t.name for t in self.tensors],
                "layer": [t.layer for t in self.tensors],
                "component": [t.component for t in self.tensors],
                "memory": [t.memory for t in self.tensors],
                "bits": [t.bits for t in self.tensors],
                "size_bytes": [t.size_bytes for t in self.tensors],
                "dram_pj": [t.read_pj if t.memory == "dram" else 0.0 for t in self.tensors],
                "sram_pj": [t.read_pj if t.memory == "sram" else 0.0 for t in self.tensors],
                "compute_pj": [t.compute_pj for t in self.tensors],
                "total_pj": [t.total_pj for t in self.tensors],
            }
        )

    def by_component(self) -> pd.DataFrame:
        """pJ per request by component: DRAM, SRAM, compute, total and share of the total."""
        grouped = self.table().groupby("component")[
            ["dram_pj", "sram_pj", "compute_pj", "total_pj"]
        ]
        summary = grouped.sum()
        summary["share"] = summary["total_pj"] / max(self.total_pj, 1e-12)
        return summary.sort_values("total_pj", ascending=False)

    def by_layer(self) -> pd.DataFrame:
        """pJ per request by layer (embeddings, layer.0, ..., head), in model order."""
        summary = (
            self.table()
            .groupby("layer", sort=False)[["dram_pj", "sram_pj", "compute_pj", "total_pj"]]
            .sum()
        )
        summary["share"] = summary["total_pj"] / max(self.total_pj, 1e-12)
        return summary

    def by_memory(self) -> dict[str, float]:
        """pJ per request read from DRAM, read from SRAM, and spent computing."""
        table = self.table()
        return {key: float(table[f"{key}_pj"].sum()) for key in ("dram", "sram", "compute")}


def component_of(tensor_name: str) -> str:
    """Coarse part of a BERT-style classifier a parameter belongs to."""
    if ".embeddings." in f".{tensor_name}":
        return "embeddings"
    if "LayerNorm" in tensor_name or "layer_norm" in tensor_name:
        return "norm"
    if ".attention." in tensor_name:
        return "attention"
    if ".intermediate." in tensor_name or ".output." in tensor_name:
        return "feed_forward"
    return "head"


def layer_of(tensor_name: str) -> str:
    """Which layer a parameter belongs to: embeddings, layer.N (encoder block N) or head."""
    if ".embeddings." in f".{tensor_name}":
        return "embeddings"
    block = re.search(r"\.layer\.(\d+)\.", f".{tensor_name}")
    return f"layer.{block.group(1)}" if block else "head"


def energy_per_request(costs: list[TensorCost], profile: DeviceProfile) -> EnergyReport:
    """Place tensors for `profile`, then price every read and MAC (pJ per request)."""
    resident = place_in_sram(costs, profile)
    tensors = []
    for cost in costs:
        on_chip = cost.name in resident
        per_byte = profile.sram_pj_per_byte if on_chip else profile.dram_pj_per_byte
        tensors.append(
            TensorEnergy(
                cost.name,
                cost.module,
                component_of(cost.name),
                layer_of(cost.name),
                "sram" if on_chip else "dram",
                cost.bits,
                cost.size_bytes,
                cost.bytes_read * per_byte,
                cost.macs * profile.mac_energy_pj(cost.mac_bits),
            )
        )
    return EnergyReport(profile.name, tensors)


def streaming_requests(text: str) -> list[str]:
    """What an on-device assistant classifies while a user speaks: every growing prefix of the
    words (the partial transcripts), ending with the whole text. `request_lengths` counts these
    requests without building them."""
    words = text.split()
    return [" ".join(words[: k + 1]) for k in range(len(words))]


def request_lengths(
    texts: list[str], workload: str, tokenizer: object, max_length: int
) -> Counter[int]:
    """How many requests of each token length (truncated to `max_length`) `workload` makes on
    `texts`: batch, one per text; streaming, one per growing word prefix (`streaming_requests`).

    Streaming prefixes are never tokenized one by one (a 350-word text makes 350 of them).
    A BERT WordPiece tokenizer normalizes character by character and splits on whitespace
    before anything else, so "w1 … wk" tokenizes to [CLS] tokens(w1) … tokens(wk) [SEP]: what
    `is_split_into_words` computes, with `word_ids` telling which word each token came from.
    Prefix k is then [CLS] + [SEP] + the tokens of its first k words long, capped at
    `max_length`; the truncated encoding of the whole text holds every token of each prefix
    that fits and fills up for each prefix that does not, so one encoding per text gives them
    all. Checked: the word-split encoding must equal the whole text's, else the tokenizer is
    refused.
    """
    if workload == "batch":
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return Counter(len(ids) for ids in encoded)
    if workload != "streaming":
        raise ValueError(f"unknown workload {workload!r}; choose from {WORKLOADS}")
    words = [words for words in (text.split() for text in texts) if words]
    if not words:
        return Counter()
    split = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
    whole = tokenizer([" ".join(w) for w in words], truncation=True, max_length=max_length)
    lengths: Counter[int] = Counter()
    for i, text_words in enumerate(words):
        if split["input_ids"][i] != whole["input_ids"][i]:
            raise ValueError(
                f"{type(tokenizer).__name__} does not tokenize {' '.join(text_words)[:60]!r} "
                "word by word as it tokenizes the whole text; streaming lengths assume a "
                "tokenizer that splits on whitespace first (BERT WordPiece): use one, or "
                "leave streaming out of profile.workloads and compress.workloads"
            )
        word_of_token = split.word_ids(i)
        special = sum(1 for word in word_of_token if word is None)
        per_word = np.bincount(
            [word for word in word_of_token if word is not None], minlength=len(text_words)
        )
        prefix_lengths = np.minimum(special + np.cumsum(per_word), max_length)
        lengths.update(prefix_lengths.tolist())
    return lengths


def count_lengths(model: torch.nn.Module, lengths: Mapping[int, int]) -> dict[str, ModuleCounts]:
    """Invocation counts of `model` running every request alone (batch size 1), as a device
    classifying one utterance at a time does; `lengths`: token length -> requests of it
    (`request_lengths`).

    Hooks see shapes, never token values, so a request's counts depend on its length only:
    each length runs once and its counts are multiplied by its requests (calls, rows and
    token pairs add up; the longest sequence is a maximum)."""
    total: dict[str, ModuleCounts] = {}
    was_training = model.training
    model.eval()
    try:
        for length, requests in sorted(lengths.items()):
            if requests < 1:
                continue
            if length < 1:
                raise ValueError(f"a request of {length} tokens cannot run; lengths are >= 1")
            ids = torch.zeros((1, length), dtype=torch.long)
            inputs = {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "token_type_ids": torch.zeros_like(ids),
            }
            once = count_invocations(model, functools.partial(model, **inputs))
            for name, counts in once.items():
                entry = total.setdefault(name, ModuleCounts())
                entry.calls += requests * counts.calls
                entry.rows += requests * counts.rows
                entry.token_pairs += requests * counts.token_pairs
                entry.max_tokens = max(entry.max_tokens, counts.max_tokens)
    finally:
        model.train(was_training)
    return total


@dataclass(frozen=True)
class WorkloadEnergy:
    """Modeled energy of one model under one workload, for every device profile."""

    workload: str
    texts: int  # utterances: energies are per utterance
    requests: int  # forward passes (streaming: one per partial transcript)
    reports: dict[str, EnergyReport]  # profile name -> report
    activation_sram_bytes: float = 0.0  # SRAM held for activations (not weights)

    def table(self) -> pd.DataFrame:
        """Per-tensor rows of every profile, with workload and profile columns."""
        return pd.concat(
            [
                report.table().assign(workload=self.workload, profile=name)
                for name, report in self.reports.items()
            ],
            ignore_index=True,
        )

    def by_layer(self) -> pd.DataFrame:
        """pJ per request by layer (`EnergyReport.by_layer`, without its share) of every
        profile: columns workload, profile, layer, dram_pj, sram_pj, compute_pj, total_pj;
        layers in model order within each profile."""
        layers = pd.concat(
            [
                report.by_layer().drop(columns="share").reset_index()
                .assign(workload=self.workload, profile=name)
                for name, report in self.reports.items()
            ],
            ignore_index=True,
        )  # fmt: skip
        columns = ["workload", "profile", "layer", "dram_pj", "sram_pj", "compute_pj", "total_pj"]
        return layers[columns]


def model_energy(
    model: torch.nn.Module,
    tokenizer: object,
    texts: list[str],
    max_length: int,
    profiles: list[DeviceProfile],
    executed: Mapping[str, Width] | None = None,
    workloads: tuple[str, ...] = WORKLOADS,
) -> list[WorkloadEnergy]:
    """Count invocations over each workload once (on `model`, the torch reference of the served
    graph: one forward pass per distinct request length), then price them at the `executed`
    widths for every profile."""
    results = []
    for workload in workloads:
        lengths = request_lengths(texts, workload, tokenizer, max_length)
        counts = count_lengths(model, lengths)
        costs = tensor_costs(model, counts, len(texts), executed)
        held = activation_bytes(model, counts)
        reports = {p.name: energy_per_request(costs, reserve(p, held)) for p in profiles}
        results.append(WorkloadEnergy(workload, len(texts), lengths.total(), reports, held))
    return results


def energy_summary(results: list[WorkloadEnergy]) -> dict:
    """Headline modeled figures: µJ per utterance and DRAM share, per profile and workload."""
    profiles = list(results[0].reports) if results else []
    return {
        "texts": results[0].texts if results else 0,
        "requests": {r.workload: r.requests for r in results},
        "activation_sram_bytes": {r.workload: r.activation_sram_bytes for r in results},
        "uj_per_utterance": {
            p: {r.workload: round(r.reports[p].total_pj / 1e6, 3) for r in results}
            for p in profiles
        },
        "dram_share": {
            p: {
                r.workload: round(r.reports[p].by_memory()["dram"] / r.reports[p].total_pj, 4)
                for r in results
            }
            for p in profiles
        },
    }


def linear_constraint(matrix: np.ndarray, low: float, high: float) -> LinearConstraint:
    """A milp constraint on a sparse matrix. scipy wraps a dense one in `catch_warnings()` +
    `simplefilter("error")`, which is not thread-safe: with plans solved on parallel task
    threads, interleaved catch_warnings blocks can leave "error" installed for the whole
    process, and a later harmless warning (MLflow's) then crashed the stage."""
    return LinearConstraint(csr_array(matrix), low, high)
