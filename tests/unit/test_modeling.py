"""frugal.model.modeling: a classifier built on the (tiny) encoder, saved and loaded back the
same, its probabilities, and the input length it reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from frugal.errors import FrugalError
from frugal.model.export import save_classifier
from frugal.model.modeling import (
    AUTO_MAX_LENGTH_CAP,
    fitted_max_length,
    load_classifier,
    logits_of,
    new_classifier,
    predict_proba,
)

TEXTS = ["what is the capital of peru ?", "who wrote hamlet ?", "how far is the moon ?"]


def test_probabilities_are_a_distribution_over_the_labels_in_input_order():
    torch.manual_seed(0)
    clf = new_classifier(["LOC", "HUM", "NUM"], 16)
    probs = predict_proba(clf, TEXTS, batch_size=2)
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # batched (texts sorted by length inside) or one by one: the same rows, in input order
    one_by_one = np.vstack([predict_proba(clf, [t], batch_size=1) for t in TEXTS])
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)


def test_a_saved_classifier_loads_back_with_its_labels_length_and_outputs(tmp_path):
    torch.manual_seed(1)
    clf = new_classifier(["LOC", "HUM"], 12)
    save_classifier(clf, tmp_path / "model")
    loaded = load_classifier(tmp_path / "model")
    assert loaded.labels == ["LOC", "HUM"] and loaded.max_length == 12
    torch.testing.assert_close(logits_of(loaded, TEXTS), logits_of(clf, TEXTS))
    assert not (tmp_path / "model.partial").exists()  # written aside, then swapped in


def test_loading_where_no_model_is_says_how_to_make_one(tmp_path):
    with pytest.raises(FrugalError, match="no model.safetensors here; train a model first"):
        load_classifier(tmp_path)


def test_auto_length_fits_the_longest_text_rounded_up_and_capped(tokenizer):
    fitted = fitted_max_length("auto", TEXTS, tokenizer)
    longest = max(len(tokenizer(t)["input_ids"]) for t in TEXTS)
    assert fitted % 8 == 0 and longest <= fitted < longest + 8
    assert fitted_max_length("auto", ["word " * 1000], tokenizer) == AUTO_MAX_LENGTH_CAP
    assert fitted_max_length(24, TEXTS, tokenizer) == 24
