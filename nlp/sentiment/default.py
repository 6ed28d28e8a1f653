"""The default sentiment analyzer: character n-gram TF-IDF + logistic regression.

Characters, not words: it needs no Chinese segmenter, and the same model reads
Chinese, English and the mix customers write. Classes are weighted by their
size, so the small neutral set (questions, logistics) is not drowned by the
review sentences. Saved with joblib together with the scikit-learn version and
the training figures; a file made by another scikit-learn version is refused
with the command that remakes it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import joblib
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from crm_core.ports import Sentiment
from nlp.sentiment.data import Example, load_examples, split

log = logging.getLogger(__name__)

FORMAT = 1


class ModelUnavailable(Exception):
    pass


def build() -> Pipeline:
    return make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, lowercase=True),
        LogisticRegression(C=4.0, max_iter=3000, class_weight="balanced"),
    )


def evaluate(model: Pipeline, examples: list[Example]) -> dict[str, Any]:
    """Accuracy overall, per language, per class and on short messages (<= 15 characters)."""
    predicted = model.predict([e.text for e in examples]) if examples else []
    pairs = list(zip(predicted, examples, strict=True))

    def accuracy(keep) -> dict[str, float | int]:
        chosen = [(p, e) for p, e in pairs if keep(e)]
        right = sum(p == e.label for p, e in chosen)
        return {"accuracy": round(right / len(chosen), 4) if chosen else 0.0, "n": len(chosen)}
    figures: dict[str, Any] = {"overall": accuracy(lambda e: True)}
    for language in ("zh", "en"):
        figures[language] = accuracy(lambda e, lang=language: e.language == lang)
    for label in ("negative", "neutral", "positive"):
        figures[label] = accuracy(lambda e, lab=label: e.label == lab)
    figures["short"] = accuracy(lambda e: len(e.text) <= 15)
    return figures


def train(path: Path) -> dict[str, Any]:
    """Train on the fixed split, save to `path`, return the held-out figures."""
    started = time.monotonic()
    train_set, test_set = split(load_examples())
    model = build()
    model.fit([e.text for e in train_set], [e.label for e in train_set])
    figures = evaluate(model, test_set)
    figures["trained_on"] = len(train_set)
    figures["seconds"] = round(time.monotonic() - started, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    joblib.dump({"format": FORMAT, "sklearn": sklearn.__version__, "model": model, "figures": figures}, temporary,
                compress=3)
    temporary.replace(path)  # never a half-written model
    return figures


def usable(path: Path) -> bool:
    try:
        DefaultSentiment(path)
        return True
    except ModelUnavailable:
        return False


class DefaultSentiment:
    def __init__(self, path: Path) -> None:
        remake = f"make it with: scrm nlp train-sentiment --out {path}"
        if not path.exists():
            raise ModelUnavailable(f"no sentiment model at {path}; {remake}")
        try:
            saved = joblib.load(path)
        except Exception as exc:  # a truncated or foreign file
            raise ModelUnavailable(f"cannot read the sentiment model {path} ({type(exc).__name__}); {remake}") \
                from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT or saved.get("sklearn") != sklearn.__version__:
            raise ModelUnavailable(f"the sentiment model {path} was made by another version "
                                   f"(scikit-learn {saved.get('sklearn') if isinstance(saved, dict) else '?'}, "
                                   f"this is {sklearn.__version__}); {remake}")
        self.model: Pipeline = saved["model"]
        self.figures: dict[str, Any] = saved.get("figures", {})
        self.classes = list(self.model.classes_)

    def analyze(self, text: str) -> Sentiment:
        return self.analyze_many([text])[0]

    def analyze_many(self, texts: list[str]) -> list[Sentiment]:
        results = []
        for probabilities in self.model.predict_proba(texts):
            by_label = dict(zip(self.classes, probabilities, strict=True))
            label = max(by_label, key=by_label.__getitem__)
            score = float(by_label.get("positive", 0.0) - by_label.get("negative", 0.0))
            results.append(Sentiment(label=label, score=round(score, 4), confidence=round(float(by_label[label]), 4)))
        return results
