"""The customer bot: FAQ answers, the lead form, consent, handoff to a person, satisfaction."""

from bots.customer.bot import CustomerBot, CustomerBotSettings
from bots.customer.form_answers import FormAnswers

__all__ = ["CustomerBot", "CustomerBotSettings", "FormAnswers"]
