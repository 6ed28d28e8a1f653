"""Rep-side compliance: wording in a rep's message to a customer that a manager
should see (discounts, refunds, guarantees and promises), by category.

The lists are configurable (`SCRM_COMPLIANCE_TERMS`, JSON: category -> terms);
matching ignores case and, for Latin words, stops at word boundaries ("refund"
matches "refunds" but "guarantee" does not match inside other words).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

DEFAULT_TERMS: dict[str, list[str]] = {
    "discount": ["discount", "% off", "cheaper for you", "special price", "rebate", "kickback",
                 "折扣", "打折", "打八折", "优惠价", "便宜给你", "返现", "返点", "回扣", "送你"],
    "refund": ["refund", "money back", "reimburse", "退款", "退钱", "全额退", "包退"],
    "guarantee": ["guarantee", "guaranteed", "i promise", "we promise", "100%", "no risk", "risk-free",
                  "保证", "承诺", "包过", "包赔", "绝对", "稳赚", "保本", "零风险", "肯定没问题"],
}


class ComplianceCheck:
    def __init__(self, terms: Mapping[str, Sequence[str]] | None = None) -> None:
        self.rules: list[tuple[str, str, re.Pattern[str]]] = []
        for category, words in (terms or DEFAULT_TERMS).items():
            for word in words:
                word = word.strip()
                if not word:
                    continue
                latin = re.fullmatch(r"[\w\s'-]+", word, re.ASCII) is not None
                pattern = rf"(?<![A-Za-z]){re.escape(word)}" if latin else re.escape(word)
                self.rules.append((category, word, re.compile(pattern, re.I)))

    def __call__(self, text: str) -> list[tuple[str, str]]:
        """(category, term) pairs found in `text`, each once, in list order."""
        return [(category, word) for category, word, pattern in self.rules if pattern.search(text or "")]
