"""Sentiment backends: held-out accuracy and speed. Run by hand: `./dev scrm ...` is not
needed, `python bench/sentiment.py [--model PATH]` inside the project's environment.

Accuracy overall, per language, per class and on short messages (<= 15
characters) on the fixed held-out split; messages per second single-process,
one message at a time and in batches of 256. Only the default backend exists
so far.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlp.sentiment.data import load_examples, split  # noqa: E402
from nlp.sentiment.default import DefaultSentiment, evaluate, train, usable  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("var/models/sentiment-default.joblib"))
    parser.add_argument("--messages", type=int, default=5000, help="messages timed per mode")
    args = parser.parse_args()
    if not usable(args.model):
        print(f"training the default model into {args.model} ...", flush=True)
        train(args.model)
    analyzer = DefaultSentiment(args.model)
    _, test = split(load_examples())
    print(f"held-out set: {len(test)} messages", flush=True)
    figures = evaluate(analyzer.model, test)
    print("\n| default (char n-gram TF-IDF + LR) | accuracy | n |\n|---|---|---|")
    for part in ("overall", "zh", "en", "negative", "neutral", "positive", "short"):
        print(f"| {part} | {figures[part]['accuracy']:.1%} | {figures[part]['n']} |")

    texts = [e.text for e in test]
    texts = (texts * (args.messages // len(texts) + 1))[:args.messages]
    started = time.perf_counter()
    for text in texts:
        analyzer.analyze(text)
    single = len(texts) / (time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(0, len(texts), 256):
        analyzer.analyze_many(texts[start:start + 256])
    batch = len(texts) / (time.perf_counter() - started)
    print(f"\nspeed, one process: {single:,.0f} msgs/s one at a time, {batch:,.0f} msgs/s in batches of 256")


if __name__ == "__main__":
    main()
