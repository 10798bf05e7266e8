"""The HTTP API for integrations (FastAPI): composition root in api.app, one router a resource.

The paths below are here, not in api.app, so the CLI can name them without importing FastAPI.
"""

API_PREFIX = "/api"
VERSION_PREFIX = f"{API_PREFIX}/v1"
DOCS_URL = f"{API_PREFIX}/docs"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"
