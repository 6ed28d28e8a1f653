"""The transformers sentiment backend: trained into a local directory, loaded only from one.

A deliberately tiny model (one layer, a few hundred sentences, one epoch) is
trained here so the round trip is tested in seconds; its accuracy is not the
point (bench/sentiment.py measures the real one). Without torch these tests
skip, except in CI, where `./dev test` installs it and they must run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from hub.context import load_sentiment
from hub.settings import Settings
from nlp.sentiment.data import LABELS, load_examples, split
from nlp.sentiment.default import ModelUnavailable

if not all(importlib.util.find_spec(name) for name in ("torch", "transformers")):
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the transformers backend tests: ./dev test installs torch")
    pytest.skip("torch / transformers are not installed (pip install torch==2.13.0 && pip install -e "
                "'.[transformers]')", allow_module_level=True)

from nlp.sentiment.transformer import FIGURES_FILE, TrainConfig, TransformerSentiment, train, unknown_rate  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "sentiment-transformer"
    lines: list[str] = []
    train(path, TrainConfig(layers=1, hidden=32, heads=2, epochs=1, limit=400, max_length=64),
          progress=lines.append)
    assert lines[0].startswith("vocabulary: ") and lines[-1].startswith("epoch 1/1: mean loss")
    return path


def test_a_hub_id_is_refused_and_nothing_is_looked_up(tmp_path: Path):
    with pytest.raises(ModelUnavailable, match="never downloaded"):
        TransformerSentiment(Path("bert-base-chinese"))
    with pytest.raises(ModelUnavailable, match="never downloaded"):
        TransformerSentiment(Path("google-bert/bert-base-chinese"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="no config.json"):
        TransformerSentiment(tmp_path / "empty")
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_the_saved_directory_holds_model_tokenizer_and_figures(model_dir: Path):
    assert {"config.json", "model.safetensors", "tokenizer.json", FIGURES_FILE} <= {p.name for p in model_dir.iterdir()}
    assert not model_dir.with_name(model_dir.name + ".tmp").exists()
    analyzer = TransformerSentiment(model_dir)
    assert set(analyzer.figures) >= {"overall", "zh", "en", "negative", "neutral", "positive", "short"}
    assert analyzer.figures["overall"]["n"] > 2000


def test_the_reloaded_tokenizer_has_its_whole_vocabulary(model_dir: Path):
    # transformers 5 can silently build a 5-token vocabulary from a vocab file: check what was loaded.
    analyzer = TransformerSentiment(model_dir)
    tokenizer = analyzer.tokenizer
    assert len(tokenizer) == analyzer.figures["vocabulary"] > 3000
    assert analyzer.model.config.vocab_size == len(tokenizer)
    held_out = [e.text for e in split(load_examples())[1]]
    assert unknown_rate(tokenizer, [t for t in held_out if any("\u4e00" <= c <= "\u9fff" for c in t)]) < 0.01
    assert unknown_rate(tokenizer, [t for t in held_out if t.isascii()]) < 0.02
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("质量太差了 Refund please")["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert tokens[1:6] == ["质", "量", "太", "差", "了"] and "[UNK]" not in tokens


def test_it_scores_like_any_analyzer(model_dir: Path):
    analyzer = TransformerSentiment(model_dir)
    texts = ["请问什么时候发货？", "when will it ship?", "太差了，退款！", "Thanks, great support 😊", "", "好" * 500]
    one_by_one = [analyzer.analyze(t) for t in texts]
    together = analyzer.analyze_many(texts)
    for single, batched in zip(one_by_one, together, strict=True):
        assert single.label in LABELS and 1 / 3 <= single.confidence <= 1 and -1 <= single.score <= 1
        assert single.label == batched.label and abs(single.score - batched.score) < 1e-3
    assert analyzer.analyze_many([]) == []


def test_the_hub_chooses_the_backend_from_settings(model_dir: Path, tmp_path: Path):
    chosen = load_sentiment(Settings(data_dir=tmp_path, sentiment_backend="transformers",
                                     sentiment_transformer_dir=model_dir))
    assert isinstance(chosen, TransformerSentiment)
    # A missing model turns sentiment off with the reason logged; the hub still runs.
    assert load_sentiment(Settings(data_dir=tmp_path, sentiment_backend="transformers")) is None
