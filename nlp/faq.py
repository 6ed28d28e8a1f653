"""FAQ retrieval: which operator-written answer fits a customer's question, and how surely.

Two readings, the better one counts: the words (TF-IDF, below) and the meaning (the multilingual
sentence encoder, `nlp/encoder.py`, when installed): "你们几点关门" shares no word with "营业时间是几点到
几点？" and "are you open on Sundays" is not even Chinese, yet both mean it. The encoder's cosine is
of an entry (half its closest text, half the mean of its questions and answers) is put on the same
0..1 scale as the words' score (`MEANING_FLOOR` maps to 0, `MEANING_FULL` to 1:
chosen with the threshold on the labelled set of `bench/faq.py`), so one threshold serves both.

Questions are compared as TF-IDF vectors (cosine similarity, 0 to 1) over three
kinds of term, so a paraphrase still meets its question:
- words: jieba's search-mode cut for Chinese ("退货流程" also gives "退货", "流程"),
  English words lowercased and crudely stemmed ("refunds", "refunded" -> "refund");
- Chinese character bigrams, which match where the segmenter cut differently;
- synonyms: the operators' groups ("价格 / 价钱 / 多少钱 / price / cost"), every member
  replaced by the group's first word before anything else, in questions and queries.
An entry has several phrasings of its question (zh and en); it scores by its best.
Below the threshold the caller should not guess (the customer bot offers a person).
What this cannot do: keep "退货要多久" (how long does a return take?) from meeting
"发货要多久" (shipping) when the FAQ has no question about return times: all but the
topic word match. Operators add the question; `POST /api/v1/faq/search` shows them
what the bot would answer and how surely.

Not scikit-learn's TfidfVectorizer: it drops a query's words the questions never
use, so "refund for my flight to Mars" would score as high as "refund". Here they
stay in the query's length and lower the score, which is what makes it a confidence.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nlp.encoder import shared as shared_encoder
from nlp.script import simplified

_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RUN = re.compile(f"[{_HAN}]+")
_LATIN_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    "a an the is are am was were be been do does did i you we my your our me it its this that to of in on for "
    "and or with can could would should will how what when where which who why please hi hello there any "
    "的 了 吗 呢 吧 啊 呀 我 你 您 我们 你们 是 在 有 和 与 或 请问 请 一下 怎么 怎样 如何 什么 可以 能 能否 "
    "想 要 需要 这个 那个 哪里 哪儿 多少 几 我想 我要 想要 你好 您好 谢谢 麻烦 一下子".split())


@dataclass(frozen=True)
class FaqItem:
    id: int
    questions: tuple[str, ...]           # the question and other ways of asking it, any language
    answers: dict[str, str]              # language ("zh" / "en") -> answer
    image_url: str | None = None         # shown with the answer where the channel can
    link_url: str | None = None


@dataclass(frozen=True)
class Match:
    item: FaqItem
    score: float                         # cosine similarity of the best phrasing, 0..1
    question: str                        # that phrasing
    # Among entries with the same score (several at 1.0 are common in a large knowledge base):
    # the evidence before it was capped, the words' cosine plus the meaning's, so the entry whose
    # own question was asked wins over one that merely shares its topic.
    strength: float = 0.0


def _stem(word: str) -> str:
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + keep
    return word


class SynonymMap:
    """Operators' synonym groups: every member is written as the group's first member.
    Groups sharing a member are one group."""

    def __init__(self, groups: Iterable[Sequence[str]] = ()) -> None:
        canonical: dict[str, str] = {}
        for group in groups:
            words = [w.strip().lower() for w in group if w and w.strip()]
            if len(words) < 2:
                continue
            head = next((canonical[w] for w in words if w in canonical), words[0])
            for word in words:
                old = canonical.get(word)
                if old is not None and old != head:  # joins two groups: move the other one over
                    for member, target in list(canonical.items()):
                        if target == old:
                            canonical[member] = head
                canonical[word] = head
        self._canonical = canonical
        # Longest first, so "多少钱" is replaced before a shorter member inside it.
        members = sorted((w for w in canonical if canonical[w] != w), key=len, reverse=True)
        parts = [re.escape(w) if _HAN_RUN.fullmatch(w) or not w.isascii() else rf"\b{re.escape(w)}\b"
                 for w in members]
        self._pattern = re.compile("|".join(parts)) if parts else None

    def word(self, word: str) -> str:
        return self._canonical.get(word, word)

    def apply(self, text: str) -> str:
        text = text.lower()
        if self._pattern is None:
            return text
        # Padded with spaces: a canonical English word must not glue onto its neighbours.
        return self._pattern.sub(lambda m: f" {self._canonical[m.group(0)]} ", text)


def warm_up() -> None:
    """Load jieba's dictionary and the sentence encoder now (about 2 s), not on a customer's first question."""
    import jieba

    jieba.initialize()
    encoder = shared_encoder()
    if encoder is not None:
        encoder.encode(["你好"])


def terms(text: str, synonyms: SynonymMap | None = None) -> list[str]:
    """The terms a question is compared by (see the module's first lines)."""
    import jieba  # loads its dictionary on first use (about 1 s)

    text = synonyms.apply(text) if synonyms is not None else text.lower()
    found: list[str] = []
    for run in _HAN_RUN.findall(text):
        found.extend(w for w in jieba.lcut_for_search(run) if w not in _STOPWORDS)
        # Marked apart from words: a bigram that is also a word would otherwise count twice.
        found.extend(f"~{a}{b}" for a, b in zip(run, run[1:]) if f"{a}{b}" not in _STOPWORDS)
        if len(run) == 1 and run not in _STOPWORDS:
            found.append(run)
    # A stemmed word may only now be a synonym ("refunds" -> "refund").
    canonical = synonyms.word if synonyms is not None else str
    found.extend(canonical(_stem(w)) for w in _LATIN_WORD.findall(text) if w not in _STOPWORDS)
    return found


# An encoder cosine at or below the floor says nothing; at the full mark it is as sure as the
# same words. Chosen on bench/faq.py's labelled set so that the customer bot's threshold for words
# (0.4, an entry's cosine of 0.32) also serves meaning: 87% of paraphrases right, 6% of unrelated
# questions answered (see docs/customer-bot.md's figures).
MEANING_FLOOR, MEANING_FULL = 0.24, 0.44
_DEFAULT = object()


def meaning_score(cosine: float) -> float:
    return min(1.0, max(0.0, (cosine - MEANING_FLOOR) / (MEANING_FULL - MEANING_FLOOR)))


class FaqIndex:
    def __init__(self, items: Sequence[FaqItem], synonyms: Iterable[Sequence[str]] = (),
                 encoder: Any = _DEFAULT) -> None:
        """`encoder`: the sentence encoder (default: the process's, when installed; None: words only)."""
        self.synonyms = SynonymMap(synonyms)
        self._phrasings: list[tuple[FaqItem, str, Counter[str]]] = [
            (item, question, Counter(terms(question, self.synonyms)))
            for item in items for question in item.questions if question.strip()]
        documents = len(self._phrasings) or 1
        seen_in: Counter[str] = Counter()
        for _, _, counts in self._phrasings:
            seen_in.update(counts.keys())
        # Smoothed IDF, as scikit-learn's: a term in every phrasing still weighs a little.
        self._idf = {term: math.log((1 + documents) / (1 + n)) + 1 for term, n in seen_in.items()}
        self._unseen_idf = math.log(1 + documents) + 1
        self._vectors = [self._vector(counts) for _, _, counts in self._phrasings]
        self.encoder = shared_encoder() if encoder is _DEFAULT else encoder
        # By meaning, an entry is its questions, its answers (what it is about, in each language the
        # operator wrote one) and its first question followed by each answer (the two together say
        # most: 91% of paraphrases find their entry first on bench/faq.py's set, 81% by questions alone).
        self._by_meaning: list[tuple[FaqItem, str]] = []
        texts: list[str] = []
        for item, question, _ in self._phrasings:
            self._by_meaning.append((item, question))
            texts.append(question)
        for item in items:
            for answer in (a for a in item.answers.values() if a.strip() and item.questions):
                self._by_meaning += [(item, item.questions[0])] * 2
                texts += [answer, f"{item.questions[0]} {answer}"]
        self._meanings = self.encoder.encode(texts) if self.encoder is not None and texts else None

    def _vector(self, counts: Counter[str]) -> dict[str, float]:
        weights = {term: (1 + math.log(n)) * self._idf.get(term, self._unseen_idf) for term, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {term: w / norm for term, w in weights.items()}

    def search(self, text: str, *, limit: int = 3) -> list[Match]:
        """The best entries for `text`, best first, one match per entry."""
        text = simplified(text)  # a question in Traditional characters finds the entry written in Simplified
        query = self._vector(Counter(terms(text, self.synonyms)))
        meanings = None
        if self._meanings is not None and text.strip():
            meanings = self._meanings @ self.encoder.encode([text])[0]
        if not query and meanings is None:
            return []
        best: dict[int, Match] = {}
        evidence: Counter[int] = Counter()

        def keep(item: FaqItem, question: str, score: float) -> None:
            if score > 0 and (item.id not in best or score > best[item.id].score):
                best[item.id] = Match(item, round(score, 4), question)
        words: dict[int, float] = {}
        for (item, question, _), vector in zip(self._phrasings, self._vectors, strict=True):
            score = sum(weight * vector.get(term, 0.0) for term, weight in query.items())
            keep(item, question, score)
            words[item.id] = max(words.get(item.id, 0.0), score)
        evidence.update(words)
        if meanings is not None:
            # An entry's meaning is half its closest text, half the mean of all its texts: an entry
            # whose question and answers all fit beats one with a single text that happens to be near
            # (bench/faq.py: 91% of paraphrases right at 10% of unrelated questions answered, 80% by
            # the closest text alone; on random halves, tuned on one, 90-92% on the other).
            cosines: dict[int, list[float]] = {}
            closest: dict[int, tuple[float, FaqItem, str]] = {}
            for (item, question), cosine in zip(self._by_meaning, meanings, strict=True):
                cosines.setdefault(item.id, []).append(float(cosine))
                if item.id not in closest or cosine > closest[item.id][0]:
                    closest[item.id] = (float(cosine), item, question)
            for item_id, (top, item, question) in closest.items():
                values = cosines[item_id]
                meaning = (top + sum(values) / len(values)) / 2
                keep(item, question, meaning_score(meaning))
                evidence[item_id] += meaning
        ranked = [dataclasses.replace(m, strength=round(evidence[m.item.id], 4)) for m in best.values()]
        return sorted(ranked, key=lambda m: (-m.score, -m.strength, m.item.id))[:limit]
