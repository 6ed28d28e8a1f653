"""Web admin panel and REST API (FastAPI), auth and roles."""
