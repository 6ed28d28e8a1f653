"""What a customer wants, in Chinese and English: opt_out, opt_in, human (ask for a person),
buying (price, quote, demo), complaint, event_registration.

A model reads it: one logistic regression per intent over the multilingual sentence encoder's
vector and character n-grams, trained when first needed (a second or two) on the project's own
labelled chat lines (`data/intents_train.tsv`; `data/intents_eval.tsv` is held out for
`bench/intents.py`). Rules stay only where they are exact: a message that is nothing but "STOP",
"TD", "退订"... is an opt-out; for the other intents a rule's words let the model decide on less
certainty than it needs alone.

Opting out is the customer's right, so it is read with care, and never guessed either way:
- sure (the model, or a lone keyword): `opt_out`, recorded at once;
- unsure (the model in between, or an opt-out word the model does not believe: "退订了还能再订阅吗",
  "how do customers unsubscribe?"): `opt_out_unsure`, and the bot asks the customer to confirm
  with a lone "TD" / "STOP" in their language.
Without the encoder's package the rules of old decide (`_rules`): an opt-out word anywhere.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from importlib import resources

import numpy as np

from crm_core.consent.service import CONFIRMATION_WORDS, REFUSAL_WORDS, UNSURE_OPT_OUT
from nlp.encoder import shared as shared_encoder
from nlp.script import simplified

INTENTS = ("opt_out", "opt_in", "human", "buying", "complaint", "event_registration")
OPT_OUT_SURE, OPT_OUT_ASK = 0.6, 0.33   # the opt-out model's probability: recorded at once / asked about
OPT_OUT_WORDED = 0.45                  # with an opt-out word in the message, recorded from here
# Every other intent: the model sure on its own, or the model leaning and a rule's words agreeing
# (the model reads meaning, the words keep it from hearing a sale in "你们卖火箭发动机吗").
THRESHOLD, THRESHOLD_WITH_WORDS = 0.75, 0.3

_OPT_OUT_ALONE = re.compile(
    r"^\s*(stop|stopall|unsubscribe|cancel|end|quit|td|t|退订|退|取消订阅|取消|停止|停止发送)\s*[.!。！]*\s*$", re.I)
_OPT_OUT_ANYWHERE = re.compile(
    r"\bunsubscribe\b|\bopt[- ]?out\b|stop (sending|messaging|texting|emailing|contacting) me|"
    r"\bremove me from\b|\bno more (messages|emails|marketing)\b|"
    r"退订|取消订阅|别再发|不要再发|不要给我发|别给我发|拒收|不再接收|请勿打扰|不要再打扰", re.I)
_OPT_OUT_START = re.compile(r"^\s*(stop|td)\b([,，.。!！]|\s+(it|now|please|pls|that|sending|messaging|texting)\b)",
                            re.I)  # "stop, ..." or "stop it", not "stop by"
_NOT_OPT_OUT = re.compile(r"\b(don't|do not|never) (stop|unsubscribe)\b|怎么(停止|退订)不了|不要停|别停|继续发|退订单",
                          re.I)

_RULES = {
    "opt_in": re.compile(r"\b(subscribe me|sign me up|opt[- ]?in|keep me (posted|updated))\b|^\s*(start|yes)\s*$|"
                         r"订阅|同意接收|愿意接收|可以给我发", re.I),
    "human": re.compile(r"\b(human|real person|agent|representative|operator|talk to (someone|a person))\b|"
                        r"人工|转人工|真人|客服|找人|接线员", re.I),
    "buying": re.compile(r"\b(price|pricing|quote|quotation|how much|cost|demo|trial|buy|purchase|order)\b|"
                         r"报价|价格|多少钱|怎么卖|购买|采购|试用|演示|下单|优惠", re.I),
    "complaint": re.compile(r"\b(complain|complaint|refund|terrible|awful|worst|broken|unacceptable|angry|"
                            r"disappointed|scam)\b|投诉|退款|太差|差劲|垃圾|骗子|坏了|不满意|失望|生气|维权", re.I),
    "event_registration": re.compile(r"\b(register|registration|sign up for|rsvp|attend)\b|报名|参加活动|参会|"
                                     r"预约.{0,6}(活动|讲座|会议|发布会)", re.I),
}


def load(name: str) -> list[tuple[tuple[str, ...], str]]:
    """(intents, text) of a labelled file: `intent,intent<TAB>text`, no intent for none."""
    rows = []
    text = resources.files("nlp").joinpath("data", name).read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        labels, tab, sentence = line.partition("\t")
        intents = tuple(i for i in labels.split(",") if i)
        if not tab or not sentence.strip() or any(i not in INTENTS for i in intents):
            raise ValueError(f"{name}:{number}: expected 'intent,intent<TAB>text' with intents from {INTENTS}")
        rows.append((intents, sentence.strip()))
    return rows


class IntentModel:
    def __init__(self, rows: list[tuple[tuple[str, ...], str]]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.encoder = shared_encoder()
        if self.encoder is None:
            raise RuntimeError("the sentence encoder is not installed")
        texts = [text for _, text in rows]
        self.chars = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, lowercase=True)
        features = self._features(texts, fit=True)
        self.models = {}
        for intent in INTENTS:
            labels = [intent in intents for intents, _ in rows]
            self.models[intent] = LogisticRegression(C=8.0, max_iter=2000, class_weight="balanced").fit(
                features, labels)

    def _features(self, texts: list[str], fit: bool = False) -> np.ndarray:
        grams = self.chars.fit_transform(texts) if fit else self.chars.transform(texts)
        return np.hstack([grams.toarray(), self.encoder.encode(texts)])

    def probabilities(self, texts: list[str]) -> list[dict[str, float]]:
        features = self._features(texts)
        columns = {intent: model.predict_proba(features)[:, 1] for intent, model in self.models.items()}
        return [{intent: float(columns[intent][n]) for intent in INTENTS} for n in range(len(texts))]


@functools.cache
def model() -> IntentModel | None:
    """The process's intent model (trained once), or None without the sentence encoder."""
    return IntentModel(load("intents_train.tsv")) if shared_encoder() is not None else None


def detect(text: str) -> list[str]:
    """The intents in `text`, in a fixed order; [] for none."""
    return detect_many([text])[0]


def detect_many(texts: Sequence[str]) -> list[list[str]]:
    """`detect` for many texts, the model's arithmetic done once for all of them."""
    texts = [simplified(text or "") for text in texts]  # 退訂, 轉人工, 投訴: read as the rules and model know them
    out: list[list[str] | None] = [[] if not text.strip() else ["opt_out"] if _OPT_OUT_ALONE.match(text) else None
                                   for text in texts]
    pending = [n for n, found in enumerate(out) if found is None]
    reader = model() if pending else None
    if pending and reader is None:
        for n in pending:
            out[n] = _rules(texts[n])
    elif pending:
        assert reader is not None
        for n, p in zip(pending, reader.probabilities([texts[n] for n in pending]), strict=True):
            out[n] = _decide(texts[n], p)
    return [found or [] for found in out]


def _decide(text: str, p: dict[str, float]) -> list[str]:
    """The intents of `text` from the model's probabilities `p`."""
    if _NOT_OPT_OUT.search(text):  # "don't stop": n-grams see the word, not the negation
        p["opt_out"] = 0.0
    others = [intent for intent in INTENTS[1:]
              if p[intent] >= THRESHOLD or (p[intent] >= THRESHOLD_WITH_WORDS and _RULES[intent].search(text))]
    worded = bool(_OPT_OUT_ANYWHERE.search(text) or _OPT_OUT_START.match(text)) and not _NOT_OPT_OUT.search(text)
    # "请把我加到推送名单" reads as much like joining the list as leaving it: asked, never recorded.
    leaving = p["opt_out"] > p["opt_in"]
    if leaving and (p["opt_out"] >= OPT_OUT_SURE or (worded and p["opt_out"] >= OPT_OUT_WORDED)):
        return ["opt_out", *(i for i in others if i != "opt_in")]
    # Unsure: an opt-out word the model does not believe, or the model leaning while the message
    # says nothing else (a complaint, a request for a person, a lone "no" answering a question
    # are heard as what they are, not asked about).
    if worded or (p["opt_out"] >= OPT_OUT_ASK and not others
                  and not (REFUSAL_WORDS.match(text) or CONFIRMATION_WORDS.match(text))):
        return [UNSURE_OPT_OUT, *others]
    return others


def _rules(text: str) -> list[str]:
    """The rules of old: an opt-out word anywhere counts (honouring the customer over guessing)."""
    found = []
    if not _NOT_OPT_OUT.search(text) and (_OPT_OUT_ANYWHERE.search(text) or _OPT_OUT_START.match(text)):
        found.append("opt_out")
    for name, rule in _RULES.items():
        if name == "opt_in" and found:
            continue  # "unsubscribe" contains "subscribe": the opt-out wins
        if rule.search(text):
            found.append(name)
    return found
