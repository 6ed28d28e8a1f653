"""Conversations: ingesting platform events, processing each message, CSAT, SLA, double opt-in."""
