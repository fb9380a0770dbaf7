"""Weights are loaded only from safetensors: a model folder holding a pickle instead is refused
with a clear message and the pickle never runs; no code path unpickles weights."""

from __future__ import annotations

import pickle
import re

import pytest

from frugal.errors import FrugalError
from frugal.model.export import save_classifier
from frugal.model.modeling import load_classifier, new_classifier
from tests.conftest import ROOT


class _Payload:
    """Unpickling this would create a file: proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_model_is_refused_and_never_unpickled(tmp_path):
    model_dir = tmp_path / "model"
    save_classifier(new_classifier(["a", "b"], 16), model_dir)
    (model_dir / "model.safetensors").unlink()
    marker = tmp_path / "pickle-ran"
    (model_dir / "pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(FrugalError, match="no model.safetensors"):
        load_classifier(model_dir)
    assert not marker.exists()


def test_no_code_path_unpickles_weights():
    sources = [
        p
        for folder in ("frugal", "orchestration", "flows", "benchmarks")
        for p in (ROOT / folder).rglob("*.py")
    ]
    unsafe, checked = [], 0
    for path in sources:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                unsafe.append(f"{path.name}: {call}")
        for call in re.findall(r"(?:Model|Classifier)\w*\.from_pretrained\([^)]*\)", text):
            checked += 1
            if "use_safetensors=True" not in call:
                unsafe.append(f"{path.name}: {call}")
        if re.search(r"^\s*import pickle|allow_pickle=True", text, re.M):
            unsafe.append(f"{path.name}: pickle")
    assert checked >= 3  # the pretrained encoder (twice) and saved classifiers
    assert not unsafe, unsafe
