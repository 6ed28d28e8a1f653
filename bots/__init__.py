"""Conversation logic: the customer bot and the rep bot. They reach people only
through crm_core services and the outbox."""
