"""What a token may not see answers 404, the same as what does not exist.

The query layer raises AccessDenied both for a resident or device that is not the viewer's and
for one that does not exist (core.access.check_resident); an integration must not learn which
ids exist from the difference, so a viewer whose role may read such things gets 'not found'.
A role that may not read them at all (family, or a caregiver asking for the fleet) keeps 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.access import AccessDenied, Permission, Viewer
from core.errors import NotFoundError


@contextmanager
def hidden_as_missing(
    viewer: Viewer, permission: Permission, message: str, key: str, **params: object
) -> Iterator[None]:
    """Turn AccessDenied into NotFoundError(message, key) when the viewer has `permission`."""
    try:
        yield
    except AccessDenied:
        if viewer.can(permission):
            raise NotFoundError(message, key=key, **params) from None
        raise
