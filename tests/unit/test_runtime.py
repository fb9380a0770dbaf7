"""frugal.model.runtime, the one home of what ONNX Runtime executes: the served graph answers
as the torch model does, every weight's executed width is read from the graph, a plan the graph
does not run is refused, and the native widths are what the kernels run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frugal.errors import FrugalError
from frugal.model.export import save_classifier
from frugal.model.modeling import new_classifier, predict_proba
from frugal.model.runtime import (
    FLOAT_BITS,
    KERNEL_OF,
    NATIVE_BITS,
    WORD_EMBEDDINGS,
    OnnxClassifier,
    executed_widths,
    in_input_order,
    kind_of,
    length_order,
    load_graph,
)

TEXTS = ["where is the eiffel tower ?", "who is the president of chile ?", "when did ww2 end ?"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(3)
    clf = new_classifier(["LOC", "HUM", "NUM"], 16)
    folder = tmp_path_factory.mktemp("served") / "model"
    save_classifier(clf, folder)
    return clf, folder


def test_the_served_graph_answers_as_the_torch_model(saved):
    clf, folder = saved
    served = OnnxClassifier(folder, threads=1)
    assert served.labels == clf.labels and served.max_length == clf.max_length
    np.testing.assert_allclose(
        served.predict_proba(TEXTS, batch_size=2), predict_proba(clf, TEXTS), atol=1e-4
    )


def test_a_float_graph_executes_every_weight_at_32_bits(saved):
    _, folder = saved
    widths = executed_widths(load_graph(folder))
    assert WORD_EMBEDDINGS in widths
    linear = [w for name, w in widths.items() if kind_of(name) == "linear"]
    assert linear and all(w.bits == FLOAT_BITS for w in linear)


def test_a_folder_that_does_not_serve_is_named_with_the_fix(tmp_path, saved):
    _, folder = saved
    with pytest.raises(FrugalError, match="model.onnx: missing"):
        OnnxClassifier(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not a graph")
    (broken / "frugal.json").write_text((folder / "frugal.json").read_text())
    with pytest.raises(FrugalError, match="not a valid ONNX model"):
        OnnxClassifier(broken)


def test_length_order_and_back_restore_the_input_order():
    texts = ["a b c", "a", "a b c d e", "a b"]
    order = length_order(texts)
    rows = np.arange(len(texts))[order][:, None]  # rows computed in length order
    assert in_input_order(rows, order)[:, 0].tolist() == [0, 1, 2, 3]


def test_each_native_width_has_its_kernel():
    assert set(NATIVE_BITS["linear"]) == set(KERNEL_OF)
    assert KERNEL_OF[0] is None  # a pruned layer runs no kernel
    assert 2 not in NATIVE_BITS["linear"] and 2 in NATIVE_BITS["embedding"]
