"""The lead form's rules: what counts as an answer to each question, and what is a
correction of an earlier one."""

from __future__ import annotations

import pytest

from bots.customer import form


@pytest.mark.parametrize("field, text, value", [
    ("name", "My name is Alice", "Alice"),
    ("name", "我叫王伟", "王伟"),
    ("company", "I work at Acme Trading Ltd.", "Acme Trading Ltd"),
    ("company", "公司是星辰科技", "星辰科技"),
    ("contact", "13800138000", "+8613800138000"),
    ("contact", "you can call me at 138 0013 8000", "+8613800138000"),
    ("contact", "chen@acme.cn", "chen@acme.cn"),
    ("need", "We need 50 seats", "50 seats"),
    ("budget", "about 50k", "about 50k"),
    ("budget", "5万左右", "5万左右"),
    ("budget", "不确定", "不确定"),
    ("timeframe", "next month", "next month"),
    ("timeframe", "三个月内", "三个月内"),
    ("timeframe", "not sure", "not sure"),
])
def test_a_valid_answer_is_kept_in_the_customers_words(field, text, value):
    assert form.parse(field, text) == form.Parsed(value)


@pytest.mark.parametrize("field, text, problem", [
    ("name", "13800138000", "bad_name"),
    ("company", "?", "bad_company"),
    ("contact", "call me maybe", "bad_contact"),
    ("contact", "138", "bad_contact"),
    ("budget", "cheap", "bad_budget"),
    ("timeframe", "whenever", "bad_timeframe"),
])
def test_an_invalid_answer_says_what_is_wrong(field, text, problem):
    assert form.parse(field, text) == form.Parsed(None, problem)


@pytest.mark.parametrize("text, asking, expected", [
    ("sorry, my number is 139 0013 9000", "budget", ("contact", "+8613900139000")),
    ("不好意思，电话是13900139000", "need", ("contact", "+8613900139000")),
    ("actually the company is Beta GmbH", "budget", ("company", "Beta GmbH")),
    ("sorry, my number is wrong", "budget", ("contact", None)),
    ("50k", "budget", None),                              # an answer, not a correction
    ("sorry, 50k", "budget", None),                       # about the question being asked
])
def test_a_correction_names_the_field_it_changes(text, asking, expected):
    found = form.correction(text, asking)
    assert (found[0], found[1].value) == expected if expected else found is None


def test_only_the_missing_fields_are_asked_in_order():
    assert form.missing({}) == "name"
    assert form.missing({"name": "Alice", "contact": "a@b.cn"}) == "company"
    assert form.missing(dict.fromkeys(form.FIELDS, "x")) is None
