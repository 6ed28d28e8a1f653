"""Telegram: Bot API webhooks or long polling, sends through aiogram."""
