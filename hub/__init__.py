"""Composition root: settings, app factory, worker, CLI."""
