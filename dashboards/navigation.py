"""The app's pages: where each lives, its title key, icon, section and the permission it needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.access import Permission, Viewer

PAGES_DIR = Path(__file__).resolve().parent / "app_pages"


@dataclass(frozen=True)
class PageSpec:
    """One page of the app."""

    name: str
    section: str
    icon: str
    permission: Permission

    @property
    def path(self) -> Path:
        """The page's script."""
        return PAGES_DIR / f"{self.name}.py"

    @property
    def title_key(self) -> str:
        """Catalogue key of the page's title."""
        return f"app.nav.{self.name}"


PAGES: tuple[PageSpec, ...] = (
    PageSpec("family", "family", ":material/family_restroom:", Permission.VIEW_FAMILY),
    PageSpec("overview", "care", ":material/dashboard:", Permission.VIEW_RESIDENTS),
    PageSpec("alerts", "care", ":material/notifications_active:", Permission.HANDLE_ALERTS),
    PageSpec("resident", "care", ":material/person:", Permission.VIEW_RESIDENTS),
    PageSpec("devices", "operations", ":material/sensors:", Permission.MANAGE_DEVICES),
    PageSpec("commands", "operations", ":material/valve:", Permission.SEND_COMMANDS),
    PageSpec("rules", "operations", ":material/rule:", Permission.MANAGE_RULES),
    PageSpec("quality", "operations", ":material/fact_check:", Permission.VIEW_QUALITY),
    PageSpec("ingest", "operations", ":material/monitor_heart:", Permission.VIEW_INGEST),
    PageSpec("notifications", "operations", ":material/outbox:", Permission.MANAGE_NOTIFICATIONS),
    PageSpec("audit", "operations", ":material/history:", Permission.VIEW_AUDIT),
    PageSpec("care_home", "admin", ":material/home_health:", Permission.MANAGE_RESIDENTS),
    PageSpec("admin", "admin", ":material/manage_accounts:", Permission.MANAGE_USERS),
    PageSpec("account", "account", ":material/account_circle:", Permission.OWN_ACCOUNT),
)
SECTIONS = ("family", "care", "operations", "admin", "account")


def pages_for(viewer: Viewer) -> dict[str, list[PageSpec]]:
    """The pages the viewer may open, by section, in display order."""
    grouped: dict[str, list[PageSpec]] = {}
    for spec in PAGES:
        if viewer.can(spec.permission):
            grouped.setdefault(spec.section, []).append(spec)
    return {section: grouped[section] for section in SECTIONS if section in grouped}
