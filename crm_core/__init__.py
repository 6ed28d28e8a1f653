"""The CRM core: domain model, database and services.

Nothing here imports the channel adapters, bots, NLP or admin packages; they
plug in through the protocols in `crm_core.ports`.
"""
