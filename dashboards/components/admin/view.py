"""What the admin page's tabs share: who is looking, in which language and timezone, and the
users, sites, residents and links the page read once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pandas as pd

from core.access import Permission, Viewer
from models import Role


@dataclass(frozen=True, eq=False)  # eq=False: the frames do not compare to a bool
class AdminView:
    """The page's data, read once per run, and the labels every tab shows it with."""

    viewer: Viewer
    # Bound to the language: format_func callbacks may run outside the script run.
    t: Callable[..., str]
    zone: str
    people: pd.DataFrame
    sites: list[tuple[str, str]]
    residents: pd.DataFrame
    assignments: pd.DataFrame
    family_links: pd.DataFrame
    permissions: dict[Role, list[Permission]]

    @cached_property
    def site_names(self) -> dict[str, str]:
        """Site id -> name."""
        return dict(self.sites)

    @cached_property
    def user_rows(self) -> dict[int, Any]:
        """User id -> their row of `people`."""
        return {int(r.user_id): r for r in self.people.itertuples()}

    @cached_property
    def site_options(self) -> list[str | None]:
        """'No site', then every site id."""
        return [None, *self.site_names]

    def role_label(self, role: str) -> str:
        """A role in words."""
        return self.t(f"app.roles.{role}")

    def site_label(self, site_id: str | None) -> str:
        """A site's name, or 'no site'."""
        return self.t("app.admin.no_site") if not site_id else self.site_names.get(site_id, site_id)

    def user_label(self, user_id: int) -> str:
        """'Name (username) · role', marked when inactive."""
        row = self.user_rows[user_id]
        label = self.t(
            "app.admin.user_label",
            name=row.display_name,
            username=row.username,
            role=self.role_label(row.role),
        )
        return label if row.active else self.t("app.admin.inactive_label", label=label)
