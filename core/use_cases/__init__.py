"""What people do through the app, the API, the CLI and the notebooks, as a viewer: reads that
check access (a caregiver sees only their residents) and actions that also write the audit log.

Every function takes the session and the viewer; the callers stay thin and never repeat a check.
"""
