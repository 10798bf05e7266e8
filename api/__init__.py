"""The HTTP API for integrations (FastAPI): composition root in api.app, one router a resource."""
