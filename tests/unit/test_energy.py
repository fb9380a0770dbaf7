"""The energy model against hand computation, and its measured invocation counts."""

from collections import Counter

import pytest
import torch

from frugal.energy.modeled import (
    DeviceProfile,
    component_of,
    count_invocations,
    count_lengths,
    energy_per_request,
    energy_summary,
    layer_of,
    model_energy,
    place_in_sram,
    request_lengths,
    streaming_requests,
    tensor_costs,
    with_bits,
)

# Horowitz ISSCC 2014 (45 nm): 32-bit DRAM read 640 pJ, SRAM read 5 pJ; fp32 mult 3.7 + add 0.9,
# int8 mult 0.2 + add 0.03.
DRAM, SRAM = 640 / 4, 5 / 4
MACS = {32: 3.7 + 0.9, 8: 0.2 + 0.03}


def profile(sram_bytes: int, name: str = "test") -> DeviceProfile:
    return DeviceProfile(name, sram_bytes, DRAM, SRAM, MACS, "Horowitz ISSCC 2014")


class Tiny(torch.nn.Module):
    """Embedding table (vocab × 4) then a 4 → 3 linear layer applied to every token."""

    def __init__(self, vocab: int = 10) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 4)
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.linear(self.embed(ids))


def costs_of(model: Tiny, requests: list[list[int]], **kw):
    counts = count_invocations(model, lambda: [model(torch.tensor([ids])) for ids in requests])
    return tensor_costs(model, counts, len(requests), **kw)


def test_energy_of_a_tiny_model_equals_the_hand_computation():
    costs = costs_of(Tiny(), [[1, 2, 3, 4, 5]])
    report = energy_per_request(costs, profile(sram_bytes=0))
    # reads: 5 embedding rows × 4 floats × 4 B + linear weight 12 × 4 B + bias 3 × 4 B
    reads = (5 * 4 * 4 + 12 * 4 + 3 * 4) * DRAM
    # MACs: 5 tokens × 4 inputs × 3 outputs, in fp32
    compute = 5 * 4 * 3 * MACS[32]
    assert report.total_pj == pytest.approx(reads + compute)
    table = report.table().set_index("tensor")
    assert table.loc["embed.weight", "dram_pj"] == pytest.approx(80 * DRAM)
    assert table.loc["linear.weight", "compute_pj"] == pytest.approx(60 * MACS[32])


def test_embedding_energy_follows_tokens_touched_not_table_size():
    def embed_pj(vocab: int, ids: list[int]) -> float:
        costs = costs_of(Tiny(vocab), [ids])
        table = energy_per_request(costs, profile(0)).table().set_index("tensor")
        return table.loc["embed.weight", "total_pj"]

    assert embed_pj(10, [1, 2, 3, 4, 5, 6]) == pytest.approx(2 * embed_pj(10, [1, 2, 3]))
    assert embed_pj(1000, [1, 2, 3]) == pytest.approx(embed_pj(10, [1, 2, 3]))


def test_a_tensor_that_fits_moves_on_chip_and_its_reads_drop_by_the_ratio():
    costs = costs_of(Tiny(), [[1, 2, 3, 4, 5]])
    # 48 B of SRAM: the 48 B linear weight fits (the 160 B table does not); it saves more
    # than the 12 B bias, so the knapsack keeps the weight.
    assert place_in_sram(costs, profile(48)) == {"linear.weight"}
    off = energy_per_request(costs, profile(0)).table().set_index("tensor")
    on = energy_per_request(costs, profile(48)).table().set_index("tensor")
    assert on.loc["linear.weight", "memory"] == "sram"
    ratio = off.loc["linear.weight", "dram_pj"] / on.loc["linear.weight", "sram_pj"]
    assert ratio == pytest.approx(DRAM / SRAM)
    assert on.loc["linear.bias", "memory"] == "dram"


def test_knapsack_prefers_frequently_read_small_tensors_over_big_rare_ones():
    costs = costs_of(Tiny(), [[1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3]])
    # embedding reads 12 rows × 16 B = 192 B per request but is 160 B big; weight+bias 60 B
    chosen = place_in_sram(costs, profile(160))
    assert chosen == {"embed.weight"}  # 192 B of reads saved beats 60 B
    assert place_in_sram(costs, profile(220)) == {"embed.weight", "linear.weight", "linear.bias"}


def test_executed_bits_change_bytes_scales_and_mac_precision():
    from frugal.model.runtime import Executed

    full = {c.name: c for c in costs_of(Tiny(), [[1, 2, 3]])}
    # weight-only 4 bits: 3 rows of 4 inputs at block 16 -> 3 float32 scales (12 B)
    float_macs = {"linear.weight": Executed(4, 32, 12, 16, "MatMulNBits")}
    rest = {n: Executed(32, 32, 0, 0, "float") for n in ("embed.weight", "linear.bias")}
    small = {c.name: c for c in costs_of(Tiny(), [[1, 2, 3]], executed=float_macs | rest)}
    assert full["linear.weight"].size_bytes == 48
    assert small["linear.weight"].size_bytes == 6 + 12
    assert small["linear.weight"].bytes_read == 6 + 12  # scales are read with the weight
    report = energy_per_request(list(small.values()), profile(0)).table().set_index("tensor")
    # weight-only: float activations, so the MACs stay fp32
    assert report.loc["linear.weight", "compute_pj"] == pytest.approx(3 * 12 * MACS[32])
    int8_macs = {"linear.weight": Executed(4, 8, 12, 16, "MatMulNBits")}
    int8 = costs_of(Tiny(), [[1, 2, 3]], executed=int8_macs | rest)
    report = energy_per_request(int8, profile(0)).table().set_index("tensor")
    # 4-bit weights on the int8 kernel multiply in the 8-bit unit
    assert report.loc["linear.weight", "compute_pj"] == pytest.approx(3 * 12 * MACS[8])
    # the planner's re-pricing of full-precision costs gives what the executed widths give
    repriced = with_bits(list(full.values()), {"linear.weight": 4}, 8, block_size=16)
    assert repriced == int8
    # a parameter the graph does not read is pruned: no bytes, no MACs
    pruned = {c.name: c for c in costs_of(Tiny(), [[1, 2, 3]], executed=rest)}
    assert pruned["linear.weight"].bytes_read == 0 and pruned["linear.weight"].macs == 0


def test_streaming_runs_the_encoder_more_often_than_batch_on_the_same_text():
    from frugal.model.modeling import new_classifier

    clf = new_classifier(["a", "b"], max_length=48)
    text = "How far is the Moon from the Earth ?"

    def workload(texts):
        def run():
            for t in texts:
                clf.model(**clf.tokenizer([t], return_tensors="pt"))

        return count_invocations(clf.model, run)

    batch = workload([text])
    streaming = workload(streaming_requests(text))
    query = "bert.encoder.layer.0.attention.self.query"
    assert batch[query].calls == 1
    assert streaming[query].calls == len(text.split()) == 9
    assert streaming[query].rows > 5 * batch[query].rows
    costs = {c.name: c for c in tensor_costs(clf.model, streaming, n_requests=1)}
    hidden = clf.model.config.hidden_size
    assert costs[f"{query}.weight"].bytes_read == 9 * hidden * hidden * 4
    assert not any("pooler" in name for name in costs)  # the mean-pooling head has none
    assert component_of("bert.encoder.layer.3.output.dense.weight") == "feed_forward"
    assert component_of("bert.encoder.layer.3.attention.output.dense.weight") == "attention"
    assert component_of("bert.embeddings.word_embeddings.weight") == "embeddings"
    assert component_of("classifier.weight") == "head"


def test_a_module_that_never_runs_costs_nothing():
    model = Tiny()
    model.unused = torch.nn.Linear(4, 4)
    costs = {c.name: c for c in costs_of(model, [[1, 2]])}
    assert costs["unused.weight"].bytes_read == 0 and costs["unused.weight"].macs == 0


def test_streaming_prefixes_end_with_the_whole_text():
    assert streaming_requests("where is Paris") == ["where", "where is", "where is Paris"]


def test_layers_and_components_partition_the_total():
    from frugal.model.modeling import new_classifier

    clf = new_classifier(["a", "b"], max_length=16)
    texts = ["where is Paris ?", "who wrote Hamlet ?"]
    results = model_energy(clf.model, clf.tokenizer, texts, 16, [profile(0), profile(2**30, "big")])
    batch, streaming = results
    assert (batch.workload, batch.requests, streaming.requests) == ("batch", 2, 8)
    report = batch.reports["test"]
    layers = report.by_layer()
    n_layers = clf.model.config.num_hidden_layers
    assert list(layers.index) == ["embeddings", *[f"layer.{i}" for i in range(n_layers)], "head"]
    every = batch.by_layer()  # every profile's layers, as the profile stage's layers.csv
    assert list(every.columns[:3]) == ["workload", "profile", "layer"]
    assert len(every) == 2 * len(layers) and set(every["workload"]) == {"batch"}
    mine = every[every["profile"] == "test"].set_index("layer")[layers.columns[:-1]]
    assert mine.equals(layers.drop(columns="share"))
    assert layers["total_pj"].sum() == pytest.approx(report.total_pj)
    assert report.by_component()["total_pj"].sum() == pytest.approx(report.total_pj)
    assert sum(report.by_memory().values()) == pytest.approx(report.total_pj)
    assert layer_of("bert.encoder.layer.11.intermediate.dense.weight") == "layer.11"
    summary = energy_summary(results)
    # the same two utterances cost more when the encoder re-runs on every prefix
    assert (
        summary["uj_per_utterance"]["test"]["streaming"]
        > summary["uj_per_utterance"]["test"]["batch"]
    )
    assert summary["dram_share"]["test"]["batch"] > 0.5
    assert summary["dram_share"]["big"]["batch"] == 0  # everything fits on chip


@pytest.fixture
def toy_classifier(tokenizer):
    """The project's classifier class at toy size (2 layers of width 8), with the real MiniLM
    WordPiece tokenizer: counts depend on shapes, so a small model counts like the big one."""
    from transformers import BertConfig

    from frugal.model.modeling import MeanPoolingClassifier

    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
        num_labels=3,
    )
    torch.manual_seed(0)
    return MeanPoolingClassifier(config), tokenizer


# Punctuation, accents, CJK, a word longer than WordPiece's 100 characters, repeated and odd
# whitespace, an empty text, and one text far longer than max_length tokens.
TEXTS = [
    "Where is Paris ?",
    "  Who  wrote\tHamlet, and when?!  ",
    "Qu'est-ce que le Café Müller à Zürich ?",
    "北京是中国的首都 , isn't it ?",
    "x" * 120 + " is a long word",
    "",
    " ".join(["How far is the Moon from the Earth, in kilometres ?"] * 6),
]


@pytest.mark.parametrize("workload", ["batch", "streaming"])
def test_counting_each_length_once_equals_running_every_request(workload, toy_classifier):
    model, tokenizer = toy_classifier
    max_length = 16
    if workload == "batch":
        requests = TEXTS
    else:
        requests = [prefix for text in TEXTS for prefix in streaming_requests(text)]

    def encode(request: str) -> dict:
        return tokenizer([request], truncation=True, max_length=max_length, return_tensors="pt")

    model.eval()
    expected = count_invocations(model, lambda: [model(**encode(r)) for r in requests])
    lengths = request_lengths(TEXTS, workload, tokenizer, max_length)

    # every request's truncated token length, without tokenizing the streaming prefixes
    assert lengths == Counter(encode(r)["input_ids"].shape[1] for r in requests)
    assert lengths[max_length] > 1  # the long text's prefixes truncate
    assert lengths.total() == len(requests)
    # one forward pass per length, multiplied: the same counts as one per request
    assert count_lengths(model, lengths) == expected


def test_an_unknown_workload_is_named():
    with pytest.raises(ValueError, match="dictation"):
        request_lengths(["where is Paris"], "dictation", None, 16)


def test_milp_constraints_never_touch_the_process_warning_filters(monkeypatch):
    """scipy guards a dense constraint matrix with catch_warnings() + simplefilter("error"),
    which leaked "error" process-wide when plans were solved on parallel threads (a later MLflow
    warning then crashed `compress`). Our constraints are sparse, so that block never runs."""
    import warnings

    import numpy as np
    from scipy.optimize import LinearConstraint

    from frugal.energy.modeled import linear_constraint

    def forbidden(self):
        raise AssertionError("catch_warnings() entered")

    monkeypatch.setattr(warnings.catch_warnings, "__enter__", forbidden)
    with pytest.raises(AssertionError, match="catch_warnings"):
        LinearConstraint(np.ones((1, 3)), 0, 1)  # the dense path does enter it
    assert linear_constraint(np.ones((1, 3)), 0, 1).A.shape == (1, 3)
