"""Key accounts (companies and their contacts) and deals: the pipeline, conversion from a lead, the forecast."""
