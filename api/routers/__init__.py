"""One router a resource; api.app publishes each under /api/v1."""
