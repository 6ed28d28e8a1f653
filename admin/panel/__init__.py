"""The admin panel at /admin: sign-in, the page shell and its assets (all served by the
hub: it works offline). The pages are a small script over the REST API (/api/v1),
which enforces each role; the panel only hides what a role cannot use."""
