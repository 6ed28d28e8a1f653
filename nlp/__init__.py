"""Understanding messages (sentiment, intents, entities, opinion monitoring).

Empty until the NLP issue: the core calls analyzers through protocols it
defines, so nothing depends on this package yet.
"""
