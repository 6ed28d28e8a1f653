"""Intents on held-out chat: precision and recall per intent, and how opt-outs are handled.

Run by hand inside the project's environment: `python bench/intents.py`. The set is
`nlp/data/intents_eval.tsv` (written by hand, never trained on). The reference, measured in the
same run, is the rules of old (what the hub does without the sentence encoder). For opt-outs it
also prints: recorded at once (sure), asked about ("reply TD to confirm"), missed; and false
opt-outs recorded on messages that are not one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp.intents import INTENTS, UNSURE_OPT_OUT, _rules, detect, load  # noqa: E402


def figures(name: str, read: Callable[[str], list[str]], rows: list[tuple[tuple[str, ...], str]]) -> None:
    found = [(set(intents), set(read(text))) for intents, text in rows]
    print(f"\n{name}\n\n| intent | recall | precision | n |\n|---|---|---|---|")
    for intent in INTENTS:
        truth = [intent in want for want, _ in found]
        said = [intent in got for _, got in found]
        hits = sum(t and s for t, s in zip(truth, said, strict=True))
        recall = hits / sum(truth) if sum(truth) else 0.0
        precision = hits / sum(said) if sum(said) else 0.0
        print(f"| {intent} | {recall:.0%} | {precision:.0%} | {sum(truth)} |")
    opt_outs = [got for want, got in found if "opt_out" in want]
    others = [got for want, got in found if "opt_out" not in want]
    sure = sum("opt_out" in got for got in opt_outs)
    asked = sum(UNSURE_OPT_OUT in got for got in opt_outs)
    print(f"\nopt-outs: {sure} of {len(opt_outs)} recorded at once, {asked} asked to confirm "
          f"(heard: {(sure + asked) / len(opt_outs):.0%}), "
          f"{len(opt_outs) - sure - asked} missed; false opt-outs recorded: "
          f"{sum('opt_out' in got for got in others)} of {len(others)} other messages "
          f"({sum('opt_out' in got for got in others) / len(others):.0%}), asked about: "
          f"{sum(UNSURE_OPT_OUT in got for got in others)}")


def main() -> None:
    rows = load("intents_eval.tsv")
    print(f"held-out chat: {len(rows)} messages; trained on {len(load('intents_train.tsv'))}")
    figures("rules of old (reference)", _rules, rows)
    figures("model over the sentence encoder + exact rules", detect, rows)


if __name__ == "__main__":
    main()
