"""Sentiment backends: held-out accuracy and speed. Run by hand inside the project's
environment: `python bench/sentiment.py [--model PATH] [--transformer DIR]`.

Accuracy overall, per language, per class and on short messages (<= 15
characters) on the fixed held-out split; messages per second single-process,
one message at a time and in batches of 256 (best of three runs, so another
process's burst does not decide the figure). The default backend is trained
first if its file is missing; the transformers backend is measured when its
directory holds a model (`scrm nlp train-transformer` makes one) and torch is
installed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp.sentiment.data import load_examples, split  # noqa: E402
from nlp.sentiment.default import (  # noqa: E402
    DefaultSentiment,
    ModelUnavailable,
    evaluate_predictions,
    train,
    usable,
)

PARTS = ("overall", "zh", "en", "negative", "neutral", "positive", "short")


def rate(texts: list[str], run: Callable[[list[str]], Any], batch: int) -> float:
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            run(texts[start:start + batch])
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def report(name: str, analyzer: Any, single: Callable[[str], Any], messages: int) -> None:
    _, test = split(load_examples())
    figures = evaluate_predictions([r.label for r in analyzer.analyze_many([e.text for e in test])], test)
    print(f"\n| {name} | accuracy | n |\n|---|---|---|")
    for part in PARTS:
        print(f"| {part} | {figures[part]['accuracy']:.1%} | {figures[part]['n']} |")
    texts = [e.text for e in test]
    texts = (texts * (messages // len(texts) + 1))[:messages]
    one = rate(texts, lambda chunk: single(chunk[0]), 1)
    many = rate(texts, analyzer.analyze_many, 256)
    print(f"\nspeed, one process: {one:,.0f} msgs/s one at a time, {many:,.0f} msgs/s in batches of 256", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("var/models/sentiment-default.joblib"))
    parser.add_argument("--transformer", type=Path, default=Path("var/models/sentiment-transformer"))
    parser.add_argument("--messages", type=int, default=5000, help="messages timed per mode (default backend)")
    args = parser.parse_args()
    if not usable(args.model):
        print(f"training the default model into {args.model} ...", flush=True)
        train(args.model)
    print(f"held-out set: {len(split(load_examples())[1])} messages", flush=True)
    default = DefaultSentiment(args.model)
    report("default (char + word n-gram TF-IDF + LR)", default, default.analyze, args.messages)
    try:
        from nlp.sentiment.transformer import TransformerSentiment

        transformer = TransformerSentiment(args.transformer)
    except ModelUnavailable as exc:
        print(f"\ntransformers backend not measured: {exc}")
        return
    layers = transformer.model.config.num_hidden_layers
    hidden = transformer.model.config.hidden_size
    report(f"transformers ({layers} layers, hidden {hidden})", transformer, transformer.analyze,
           max(500, args.messages // 5))


if __name__ == "__main__":
    main()
