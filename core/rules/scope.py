"""Which sites, residents and device types a rule covers."""

from __future__ import annotations

from typing import Any, Protocol

from models.enums import ScopeType


class Scoped(Protocol):
    """What scoping needs of a rule (an AlertRule fits)."""

    scope_type: Any
    site_id: str | None
    resident_id: int | None
    device_type: str | None


def covers(
    rule: Scoped, *, site_id: str | None, resident_id: int | None, device_type: str | None
) -> bool:
    """Whether a rule applies to a device (its site, resident and type) or to what it reported.

    A rule's site narrows every scope; with no site, a site-scoped rule covers every site.
    """
    if rule.site_id is not None and rule.site_id != site_id:
        return False
    scope = ScopeType(rule.scope_type or ScopeType.SITE)
    if scope is ScopeType.RESIDENT:
        return rule.resident_id is not None and rule.resident_id == resident_id
    if scope is ScopeType.DEVICE_TYPE:
        return rule.device_type is not None and rule.device_type == device_type
    return True
