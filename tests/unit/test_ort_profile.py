"""benchmarks/ort_profile.py: per-op figures from a real ONNX Runtime profile of a tiny graph,
and op counts of a graph as stored and after ORT's session optimizations."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))  # as when run: its own folder first (stamp.py)
spec = importlib.util.spec_from_file_location("ort_profile", ROOT / "benchmarks/ort_profile.py")
ort_profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ort_profile)

WARMUP = 2
LENGTHS = [3, 5, 3, 7]  # tokens of the measured requests


def _tiny_model(path) -> onnx.ModelProto:
    """input_ids (1, T) -> Gather (embedding) -> MatMul -> Tanh -> Softmax: op types that stay
    apart after ORT's optimizations."""
    rng = np.random.default_rng(0)
    embedding = numpy_helper.from_array(rng.random((10, 4), dtype=np.float32), "embedding")
    weight = numpy_helper.from_array(rng.random((4, 3), dtype=np.float32), "weight")
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["embedding", "input_ids"], ["embedded"]),
            helper.make_node("MatMul", ["embedded", "weight"], ["projected"]),
            helper.make_node("Tanh", ["projected"], ["squashed"]),
            helper.make_node("Softmax", ["squashed"], ["logits"], axis=-1),
        ],
        "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "T"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "T", 3])],
        [embedding, weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return model


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """The tiny model profiled on WARMUP + len(LENGTHS) requests of the given lengths."""
    tmp = tmp_path_factory.mktemp("ort_profile")
    model = _tiny_model(tmp / "model.onnx")
    session = ort_profile.profiling_session(tmp / "model.onnx", 1, tmp / "work")
    feeds = [{"input_ids": np.ones((1, n), dtype=np.int64)} for n in [4] * WARMUP + LENGTHS]
    events = ort_profile.profiled_runs(session, feeds)
    return model, events, tmp / "work" / "optimized.onnx"


def test_the_op_types_add_up_to_the_node_time_per_request(profiled):
    # given a real trace of warm-up and measured requests
    _, events, _ = profiled
    # when it is aggregated without the warm-up runs
    figures = ort_profile.aggregate(events, skip_runs=WARMUP)
    # then the op types' times sum to the node total, their shares to one, and each op ran once
    # per measured request
    by_type = {r["op_type"]: r for r in figures["by_op_type"]}
    assert figures["requests"] == len(LENGTHS)
    assert set(by_type) == {"Gather", "MatMul", "Tanh", "Softmax"}
    assert sum(r["ms_per_request"] for r in by_type.values()) == pytest.approx(
        figures["ms_per_request_nodes"]
    )
    assert sum(r["share"] for r in by_type.values()) == pytest.approx(1)
    assert all(r["calls_per_request"] == 1 for r in by_type.values())
    # and the kernels are a part of the whole run
    assert 0 < figures["ms_per_request_nodes"] <= figures["ms_per_request_run"]


def test_one_row_per_node_whatever_the_request_length(profiled):
    # given requests of 3, 5 and 7 tokens
    _, events, _ = profiled
    figures = ort_profile.aggregate(events, skip_runs=WARMUP)
    # then the token dimension is `T` and each node is one row of the top ops (a weight ORT
    # pre-packed at load, as MatMul's, is not among the inputs the profiler lists)
    shapes = {r["op_type"]: r["shapes"] for r in figures["top_ops"]}
    assert shapes["MatMul"] == "[1,T,4]"
    assert shapes["Gather"] == "[10,4]x[1,T]"
    assert len(figures["top_ops"]) == 4
    assert sum(r["share"] for r in figures["top_ops"]) == pytest.approx(1)


def test_warm_up_runs_are_left_out(profiled):
    # given the same trace
    _, events, _ = profiled
    # when every run counts, or none is left after the warm-up
    everything = ort_profile.aggregate(events)
    # then every run is a request, and a trace with only warm-up runs is refused
    assert everything["requests"] == WARMUP + len(LENGTHS)
    with pytest.raises(ValueError, match="warm-up"):
        ort_profile.aggregate(events, skip_runs=WARMUP + len(LENGTHS))


def test_op_counts_of_the_file_and_of_the_optimized_graph(profiled):
    # given the tiny graph as stored and as ORT wrote it after optimizing
    model, _, optimized = profiled
    # when its ops are counted
    in_file = ort_profile.op_counts(model)
    after = ort_profile.op_counts(onnx.load(str(optimized)))
    # then every node is counted, watched ops that are absent show as 0, watched ops come first
    assert {op: n for op, n in in_file.items() if n} == Counter(
        node.op_type for node in model.graph.node
    )
    assert in_file["Attention"] == 0 and in_file["MatMulNBits"] == 0
    assert list(in_file)[: len(ort_profile.WATCHED_OPS)] == list(ort_profile.WATCHED_OPS)
    assert after["MatMul"] == 1 and after["Gather"] == 1
    assert sum(after.values()) <= sum(in_file.values())
