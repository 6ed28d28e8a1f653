"""The knowledge base: FAQ entries in Chinese and English, and how a question finds its answer."""
