"""Fine-tuning on tiny real samples (with the tiny random encoder): it fits the questions it
trains on, is seeded, keeps the best dev checkpoint, gives every class an output, and a saved
model reloads and predicts the same. That the real encoder fine-tuned this way beats chance on
held-out questions: tests/e2e/test_pretrained_model.py."""

import numpy as np
import pytest

from frugal.config import load_params
from frugal.errors import DataError
from frugal.model.export import save_classifier
from frugal.model.modeling import load_classifier, predict_proba
from frugal.model.training import curve_subset, fine_tune, planned_steps
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def train_cfg():
    # a random encoder learns from scratch: a larger step than fine-tuning a pretrained one
    return load_params(
        ROOT / "params.yaml",
        {
            "train": {
                "max_steps": 40,
                "min_steps": 0,
                "batch_size": 16,
                "eval_every_steps": 10,
                "learning_rate": 1e-2,
                "threads": 1,
            }
        },
    ).train


@pytest.fixture(scope="module")
def trained(trec_sample, train_cfg):
    return fine_tune(trec_sample["pool"], trec_sample["dev"], train_cfg)


def test_planned_steps_has_a_floor_and_a_cap():
    cfg = load_params(ROOT / "params.yaml", {"train": {"batch_size": 32}}).train
    # 100 examples at batch 32 = 4 steps/epoch: the floor lifts them to min_steps
    assert planned_steps(100, cfg) == max(cfg.min_steps, 4 * cfg.epochs)
    capped = cfg.model_copy(update={"max_steps": 7})
    assert planned_steps(100_000, capped) == 7


def test_curve_points_are_nested_shares_in_buying_order(trec_sample):
    labeled = trec_sample["pool"].reset_index(drop=True)
    first = curve_subset(labeled, 0.25, "rounds", seed=13)
    assert first["id"].tolist() == labeled["id"].iloc[: len(first)].tolist()
    small, large = (curve_subset(labeled, f, "random", seed=13) for f in (0.25, 0.5))
    assert set(small["id"]) < set(large["id"])  # nested for one seed
    assert small.index.is_monotonic_increasing  # buying order kept
    assert set(small["id"]) != set(first["id"])  # not the first rounds
    assert set(curve_subset(labeled, 0.25, "random", seed=14)["id"]) != set(small["id"])
    whole = curve_subset(labeled, 1.0, "random", seed=13)
    assert whole["id"].tolist() == labeled["id"].tolist()  # 1.0: the whole set, either order
    with pytest.raises(ValueError, match="learning-curve order"):
        curve_subset(labeled, 0.5, "newest", seed=13)


def test_fine_tuning_fits_the_questions_it_trains_on(trained, trec_sample):
    pool = trec_sample["pool"]
    probs = predict_proba(trained.classifier, pool["text"].tolist())
    accuracy = (np.array(trained.classifier.labels)[probs.argmax(1)] == pool["label"]).mean()
    assert accuracy > 0.8  # 6 classes: chance is ~0.17
    losses = [h["train_loss"] for h in trained.history]
    assert losses[-1] < losses[0] - 0.5  # from ~ln 6 = 1.8
    assert trained.steps <= 40 and len(trained.history) == 4
    assert trained.best_dev_accuracy == max(h["dev_accuracy"] for h in trained.history)


def test_prediction_is_invariant_to_casing(trained, trec_sample):
    # the tokenizer is uncased: upper-casing a question must not change its prediction
    texts = trec_sample["test"]["text"].head(20).tolist()
    lower = predict_proba(trained.classifier, texts).argmax(1)
    upper = predict_proba(trained.classifier, [t.upper() for t in texts]).argmax(1)
    assert (lower == upper).all()


def test_saved_model_reloads_and_predicts_the_same(trained, trec_sample, tmp_path):
    texts = trec_sample["test"]["text"].head(16).tolist()
    out = tmp_path / "base"
    save_classifier(trained.classifier, out)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    reloaded = load_classifier(out)
    assert reloaded.labels == trained.classifier.labels
    np.testing.assert_allclose(
        predict_proba(reloaded, texts), predict_proba(trained.classifier, texts), atol=1e-5
    )
    # saving again replaces the folder whole, leaving no staging folders behind
    save_classifier(reloaded, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base"]


def test_training_is_seeded(trec_sample, train_cfg):
    cfg = train_cfg.model_copy(update={"max_steps": 3, "eval_every_steps": 3})
    a = fine_tune(trec_sample["pool"], trec_sample["dev"], cfg)
    b = fine_tune(trec_sample["pool"], trec_sample["dev"], cfg)
    wa, wb = a.classifier.model.classifier.weight, b.classifier.model.classifier.weight
    assert np.array_equal(wa.detach().numpy(), wb.detach().numpy())


def test_a_class_missing_from_the_labels_still_gets_an_output(trec_sample, train_cfg):
    pool = trec_sample["pool"]
    cfg = train_cfg.model_copy(update={"max_steps": 2, "eval_every_steps": 2})
    result = fine_tune(pool[pool["label"] != "ABBR"], trec_sample["dev"], cfg)
    assert "ABBR" in result.classifier.labels
    assert result.unseen_labels == ["ABBR"]
    assert predict_proba(result.classifier, ["What is NASA short for?"]).shape == (1, 6)


def test_empty_training_set_is_an_error(trec_sample, train_cfg):
    with pytest.raises(DataError, match="training set is empty"):
        fine_tune(trec_sample["pool"].iloc[:0], trec_sample["dev"], train_cfg)


def test_auto_max_length_fits_the_longest_text_up_to_the_cap(tokenizer):
    from frugal.model.modeling import AUTO_MAX_LENGTH_CAP, fitted_max_length

    assert fitted_max_length(32, ["a b c"], tokenizer) == 32  # a number is used as given
    assert fitted_max_length("auto", ["What is a cat ?", "Why ?"], tokenizer) == 8  # 7 -> 8
    assert fitted_max_length("auto", ["word " * 20], tokenizer) == 24  # 22 tokens -> 24
    assert fitted_max_length("auto", ["word " * 1000], tokenizer) == AUTO_MAX_LENGTH_CAP
