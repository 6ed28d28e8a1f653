"""The consent ledger (who agreed to what, with the proof) and the marketing rules every send obeys."""
