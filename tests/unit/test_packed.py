"""frugal.compress.packed: a compressed model on disk is packed, its pruned tensors absent, the
same values after reload, and its served graph predicts what the torch reference does."""

import copy

import torch

from frugal.compress.packed import is_compressed, load_float, save_compressed
from frugal.compress.qat import apply_bits
from frugal.model.quantize import plannable_tensors
from tests.compress_samples import BLOCK, TEXTS, accuracy_reference


def test_compressed_model_is_packed_pruned_tensors_absent_and_reloads_identically(clf, tmp_path):
    from safetensors import safe_open

    from frugal.model.runtime import OnnxClassifier

    names = plannable_tensors(clf.model)
    bits = {name: 4 for name in names}
    bits["bert.encoder.layer.1.attention.self.key.weight"] = 0
    bits["bert.encoder.layer.0.intermediate.dense.weight"] = 8
    bits["bert.embeddings.word_embeddings.weight"] = 2
    quantized = copy.deepcopy(clf)
    apply_bits(quantized.model, bits, BLOCK)
    save_compressed(quantized, bits, tmp_path / "m", {"how": "test"}, "int8", BLOCK)
    assert is_compressed(tmp_path / "m")

    with safe_open(str(tmp_path / "m" / "model.safetensors"), "pt") as stored:
        keys = set(stored.keys())
        pruned = "bert.encoder.layer.1.attention.self.key.weight"
        assert not any(k.startswith(pruned) for k in keys)  # stored as absent
        four = "bert.encoder.layer.0.attention.self.query.weight"
        hidden, vocab = clf.model.config.hidden_size, clf.model.config.vocab_size
        assert stored.get_tensor(f"{four}.codes").numel() == hidden * hidden // 2
        assert stored.get_tensor(f"{four}.scale").shape == (hidden, -(-hidden // BLOCK))
        table = "bert.embeddings.word_embeddings.weight"
        assert stored.get_tensor(f"{table}.codes").numel() == vocab * hidden // 4
    floats, loaded_bits = load_float(tmp_path / "m")
    assert loaded_bits == bits
    loaded = dict(floats.model.named_parameters())
    assert not loaded[pruned].any()  # really zero
    for name, value in quantized.model.named_parameters():
        assert torch.allclose(loaded[name], value, atol=1e-6), name
    # the served graph: packed, smaller than float32, and predicting what the reference does
    served = OnnxClassifier(tmp_path / "m")
    assert (tmp_path / "m" / "model.onnx").stat().st_size < 0.2 * 4 * sum(
        p.numel() for p in clf.model.parameters()
    )
    reference = accuracy_reference(quantized, bits)
    assert (served.predict_proba(TEXTS).argmax(1) == reference).all()
