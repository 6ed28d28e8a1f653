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
import math
import re
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
        self._fast = _FastPath(self.model)

    def analyze(self, text: str) -> Sentiment:
        """One message: the same arithmetic as the pipeline, without its per-call overhead."""
        return self._result(self._fast.probabilities(text))

    def analyze_many(self, texts: list[str]) -> list[Sentiment]:
        return [self._result(p) for p in self.model.predict_proba(texts)]

    def _result(self, probabilities: Any) -> Sentiment:
        by_label = dict(zip(self.classes, (float(p) for p in probabilities), strict=True))
        label = max(by_label, key=by_label.__getitem__)
        score = by_label.get("positive", 0.0) - by_label.get("negative", 0.0)
        return Sentiment(label=label, score=round(score, 4), confidence=round(by_label[label], 4))


class _FastPath:
    """TF-IDF (char n-grams, sublinear tf, L2) and the multinomial logistic regression
    for a single text in plain Python: scikit-learn's transform + predict_proba cost
    about 0.8 ms a call whatever the size; this costs a few dozen microseconds."""

    def __init__(self, model: Pipeline) -> None:
        vectorizer: TfidfVectorizer = model.steps[0][1]
        regression: LogisticRegression = model.steps[-1][1]
        self.min_n, self.max_n = vectorizer.ngram_range
        self.lowercase = vectorizer.lowercase
        idf = vectorizer.idf_
        coef = regression.coef_.T  # features x classes
        # n-gram -> (idf, per-class weights), only for features the model knows.
        self.weights = {gram: (float(idf[i]), coef[i].tolist()) for gram, i in vectorizer.vocabulary_.items()}
        self.intercept = regression.intercept_.tolist()
        self.whitespace = re.compile(r"\s\s+")

    def probabilities(self, text: str) -> list[float]:
        if self.lowercase:
            text = text.lower()
        text = self.whitespace.sub(" ", text)
        counts: dict[str, int] = {}
        length = len(text)
        for n in range(self.min_n, min(self.max_n, length) + 1):
            for start in range(length - n + 1):
                gram = text[start:start + n]
                if gram in self.weights:
                    counts[gram] = counts.get(gram, 0) + 1
        values = [(1.0 + math.log(tf)) * self.weights[gram][0] for gram, tf in counts.items()]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        logits = list(self.intercept)
        for (gram, _), value in zip(counts.items(), values, strict=True):
            weight = value / norm
            for k, w in enumerate(self.weights[gram][1]):
                logits[k] += weight * w
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        total = sum(exps)
        return [e / total for e in exps]
