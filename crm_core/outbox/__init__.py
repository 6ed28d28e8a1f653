"""Sending: the outbox every outgoing message goes through, and the dispatcher that sends it once."""
