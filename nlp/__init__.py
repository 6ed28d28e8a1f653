"""Understanding messages (sentiment, intents, entities, opinion monitoring).

The core calls analyzers through protocols it defines (`crm_core.ports`).
So far: the contact details a customer states about themselves (`entities`).
"""
