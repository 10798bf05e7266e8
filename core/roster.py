"""Bulk onboarding of a care home from one roster CSV: sites, residents, devices, caregivers.

The format (docs/roster.md, example docs/examples/roster.csv): a header row, then one record per
row; the `kind` column says what the row is (site, resident, device, caregiver) and each kind
reads its own columns, leaving the others empty. Rows apply in file order, so a resident may
live at a site created a few rows above, and a device or caregiver row names a resident by
`resident` (their name at the site, or #id). A site row whose id exists updates that site
(its non-empty columns; audited), so a roster can correct a site's name, timezone or contacts.

The whole file is one transaction: every row is tried (each in its own savepoint) so that the
report names every row's problem (row number, column, message in en/ko), and nothing is kept
when any row has a problem or on a dry run.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core import registry
from core.access import Permission, Viewer, acting_user, require
from core.contract.catalogue import DeviceType, is_registry_id
from core.errors import ConflictError, IotCareError, NotFoundError
from core.i18n import plural, translate, translator
from core.use_cases import admin, care_fields, residents_admin, sites_admin
from models import Device, Resident, Site, User

log = logging.getLogger(__name__)

KINDS = ("site", "resident", "device", "caregiver")
# The counted phrase (count.toml) each kind's number is written with in summaries.
_COUNTS = {
    "site": "count.sites",
    "resident": "count.residents",
    "device": "count.devices",
    "caregiver": "count.caregiver_assignments",
}
COLUMNS = (
    "kind",
    "site",
    "id",
    "name",
    "timezone",
    "address",
    "contacts",
    "room",
    "active_start",
    "active_end",
    "notes",
    "contact_name",
    "contact_relation",
    "contact_phone",
    "contact_email",
    "type",
    "resident",
    "username",
    "tier",
)
# Which column an error of a core function is about, when the error does not say.
_KEY_COLUMNS = {
    "errors.admin.site_missing": "site",
    "errors.care.site_taken": "id",
    "errors.admin.not_caregiver": "username",
    "errors.admin.user_inactive": "username",
    "errors.admin.tier_unknown": "tier",
    "errors.admin.resident_missing": "resident",
}
MAX_BYTES = 5_000_000


@dataclass(frozen=True)
class Problem:
    """What is wrong with one row: its line in the file (the header is line 1) and column."""

    row: int
    column: str | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, language: str | None = None) -> str:
        """The problem in words, in `language`."""
        return translate(self.key, language, **self.params)

    def line(self, language: str | None = None) -> str:
        """'row 3, timezone: Unknown timezone ...' in `language`."""
        return translate(
            "roster.problem",
            language,
            row=self.row,
            column=self.column or "-",
            message=self.message(language),
        )


@dataclass
class RosterReport:
    """What an import did (or would do): records per kind, and every row's problem."""

    rows: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    dry_run: bool = False
    # Existing sites a row changes: site id -> the columns that change.
    site_updates: dict[str, list[str]] = field(default_factory=dict)

    @property
    def applied(self) -> bool:
        """Whether the records were written."""
        return not self.dry_run and not self.problems

    def summary(self, language: str | None = None) -> str:
        """One line: what was (or would be) written, or how many rows have problems."""
        t = translator(language)
        if self.problems:
            return t(
                "roster.failed",
                problems=plural(t, "count.problems", len(self.problems)),
                rows=plural(t, "count.rows", len({p.row for p in self.problems})),
            )
        key = "roster.checked" if self.dry_run else "roster.imported"
        counted = {k: plural(t, _COUNTS[k], self.counts.get(k, 0)) for k in KINDS}
        text = t(key, **counted)
        if self.site_updates:
            text += " " + t(
                "roster.will_update" if self.dry_run else "roster.updated",
                sites=plural(t, "count.sites", len(self.site_updates)),
                changes="; ".join(
                    f"{site} ({', '.join(columns)})" for site, columns in self.site_updates.items()
                ),
            )
        return text


@dataclass(frozen=True)
class Outcome:
    """What a row did: the kind it created (counted), or the existing site it updated."""

    created: str | None
    updated: str | None = None
    columns: list[str] = field(default_factory=list)


Applier = Callable[[Session, Viewer, dict[str, str]], Outcome]


def decode(data: str | bytes) -> str:
    """The file's text (UTF-8, with or without a BOM as spreadsheets write it)."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise IotCareError("The file is too large.", key="roster.too_large", n=MAX_BYTES)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise IotCareError("The file is not UTF-8 text.", key="roster.not_utf8") from None
    return data.removeprefix("\ufeff")


def parse(text: str) -> tuple[list[dict[str, str]], list[Problem]]:
    """The data rows (with their line numbers under '_row') and any header problems."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    problems = [
        Problem(1, name, "roster.column_unknown", {"column": name})
        for name in header
        if name not in COLUMNS
    ]
    if "kind" not in header:
        problems.append(Problem(1, "kind", "roster.column_missing", {"column": "kind"}))
    if problems:
        return [], problems
    reader.fieldnames = header
    rows = []
    for record in reader:
        values = {k: (v or "").strip() for k, v in record.items() if k is not None}
        if not any(values.values()):
            continue  # blank lines between sections
        values["_row"] = str(reader.line_num)
        rows.append(values)
    if not rows:
        problems.append(Problem(1, None, "roster.empty"))
    return rows, problems


def _resident(session: Session, site_id: str, ref: str, column: str = "resident") -> Resident:
    """The active resident a row names: '#12' or their name at the site."""
    if ref.startswith("#") and ref[1:].isdigit():
        resident = session.get(Resident, int(ref[1:]))
        if resident is None or resident.site_id != site_id or not resident.active:
            raise care_fields.FieldError(
                column, "No such resident.", key="roster.resident_unknown", resident=ref
            )
        return resident
    found = session.scalars(
        select(Resident).where(
            Resident.site_id == site_id, Resident.name == ref, Resident.active.is_(True)
        )
    ).all()
    if not found:
        raise care_fields.FieldError(
            column, "No such resident.", key="roster.resident_unknown", resident=ref
        )
    if len(found) > 1:
        raise care_fields.FieldError(
            column, "Two residents have this name.", key="roster.resident_ambiguous", resident=ref
        )
    return found[0]


def _site(session: Session, row: dict[str, str]) -> str:
    return sites_admin.get_site(session, care_fields.registry_id("site", row.get("site"))).id


def _apply_site(session: Session, viewer: Viewer, row: dict[str, str]) -> Outcome:
    """Create the site, or update the one with this id (an empty column keeps its value)."""
    site_id = row.get("id") or row.get("site", "")
    site = session.get(Site, site_id) if is_registry_id(site_id) else None
    if site is None:
        sites_admin.create_site(
            session,
            viewer,
            site_id=site_id,
            name=row.get("name", ""),
            timezone=row.get("timezone", ""),
            address=row.get("address"),
            contacts=row.get("contacts"),
        )
        return Outcome("site")
    changed = sites_admin.update_site(
        session,
        viewer,
        site.id,
        name=row.get("name") or site.name,
        timezone=row.get("timezone") or site.timezone,
        address=row.get("address") or site.address,
        contacts=row.get("contacts") or site.contacts,
    )
    return Outcome(None, site.id, changed)


def _apply_resident(session: Session, viewer: Viewer, row: dict[str, str]) -> None:
    site_id = _site(session, row)
    name = care_fields.text("name", row.get("name"), limit=200, required=True) or ""
    taken = session.scalar(
        select(Resident.id).where(
            Resident.site_id == site_id, Resident.name == name, Resident.active.is_(True)
        )
    )
    if taken is not None:
        # A second import of the same roster must not admit everyone twice.
        raise care_fields.FieldError(
            "name", "The resident exists.", key="roster.resident_taken", name=name, site=site_id
        )
    contact = residents_admin.ContactInput(
        row.get("contact_name", ""),
        row.get("contact_relation"),
        row.get("contact_phone"),
        row.get("contact_email"),
    )
    residents_admin.create_resident(
        session,
        viewer,
        site_id=site_id,
        name=name,
        room=row.get("room"),
        timezone=row.get("timezone"),
        active_start=row.get("active_start"),
        active_end=row.get("active_end"),
        notes=row.get("notes"),
        contacts=[contact],
    )


def _apply_device(session: Session, viewer: Viewer, row: dict[str, str]) -> None:
    site_id = _site(session, row)
    device_id = care_fields.registry_id("id", row.get("id"))
    kind = (row.get("type") or "").lower()
    if kind not in {t.value for t in DeviceType}:
        raise care_fields.FieldError(
            "type",
            "Unknown device type.",
            key="roster.type_unknown",
            value=kind,
            types=", ".join(t.value for t in DeviceType),
        )
    existing = session.get(Device, device_id)
    if existing is not None and existing.decommissioned_at is not None:
        # Not "exists": the id belongs to a device taken out of service, which cannot come back.
        raise care_fields.FieldError(
            "id",
            "The id belongs to a decommissioned device.",
            key="errors.care.device_decommissioned",
            device=device_id,
        )
    if existing is not None:
        raise care_fields.FieldError(
            "id", "The device exists.", key="roster.device_taken", device=device_id
        )
    resident = _resident(session, site_id, row["resident"]) if row.get("resident") else None
    room = care_fields.text("room", row.get("room"), limit=64) or (resident and resident.room)
    registry.add_device(
        session,
        device_id=device_id,
        site_id=site_id,
        device_type=kind,
        resident_id=resident.id if resident else None,
        name=care_fields.text("name", row.get("name"), limit=200),
        room=room,
        actor=acting_user(session, viewer),
    )


def _apply_caregiver(session: Session, viewer: Viewer, row: dict[str, str]) -> None:
    if not viewer.can(Permission.MANAGE_USERS):
        raise care_fields.FieldError("username", "Admins only.", key="roster.assign_admin_only")
    site_id = _site(session, row)
    username = care_fields.text("username", row.get("username"), limit=64, required=True)
    user = session.scalar(select(User).where(User.username == (username or "").lower()))
    if user is None:
        raise care_fields.FieldError(
            "username", "No such user.", key="roster.user_unknown", username=username
        )
    resident = _resident(session, site_id, row.get("resident", ""))
    tier_text = row.get("tier") or "1"
    if not tier_text.isdigit():
        raise care_fields.FieldError(
            "tier", "Unknown tier.", key="errors.admin.tier_unknown", tier=tier_text
        )
    admin.assign_caregiver(session, viewer, user.id, resident.id, int(tier_text))


def _created(apply: Callable[[Session, Viewer, dict[str, str]], None], kind: str) -> Applier:
    def run(session: Session, viewer: Viewer, row: dict[str, str]) -> Outcome:
        apply(session, viewer, row)
        return Outcome(kind)

    return run


_APPLY: dict[str, Applier] = {
    "site": _apply_site,
    "resident": _created(_apply_resident, "resident"),
    "device": _created(_apply_device, "device"),
    "caregiver": _created(_apply_caregiver, "caregiver"),
}


def _problem(row: int, error: IotCareError) -> Problem:
    column = getattr(error, "field", None) or _KEY_COLUMNS.get(error.key or "")
    if error.key is None:
        return Problem(row, column, "roster.unexplained", {"message": str(error)})
    return Problem(row, column, error.key, dict(error.params))


def import_roster(
    session: Session,
    viewer: Viewer,
    data: str | bytes,
    *,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RosterReport:
    """Check (dry run) or import a roster in the caller's transaction; see the module doc.

    `progress(done, total)` is called after each row (for a progress bar). Nothing is kept when
    any row has a problem or on a dry run; otherwise the records are flushed and the caller
    commits.
    """
    require(viewer, Permission.MANAGE_RESIDENTS)
    acting_user(session, viewer)
    rows, problems = parse(decode(data))
    report = RosterReport(rows=len(rows), problems=problems, dry_run=dry_run)
    if problems:
        return report
    outer = session.begin_nested()
    for done, row in enumerate(rows, start=1):
        line = int(row["_row"])
        kind = row.get("kind", "").lower()
        try:
            apply = _APPLY.get(kind)
            if apply is None:
                raise care_fields.FieldError(
                    "kind", "Unknown kind.", key="roster.kind_unknown", kind=kind or "-"
                )
            # Its own savepoint: a row that fails half-way leaves nothing behind, and the
            # rows after it are still checked.
            with session.begin_nested():
                outcome = apply(session, viewer, row)
            if outcome.created:
                report.counts[outcome.created] += 1
            if outcome.updated and outcome.columns:
                columns = report.site_updates.setdefault(outcome.updated, [])
                columns.extend(c for c in outcome.columns if c not in columns)
        except (care_fields.FieldError, ConflictError, NotFoundError, IotCareError) as error:
            report.problems.append(_problem(line, error))
        except SQLAlchemyError as error:  # a constraint the checks missed: still one row's problem
            log.warning("roster row %s: %s", line, error)
            report.problems.append(Problem(line, None, "roster.database", {}))
        if progress is not None:
            progress(done, len(rows))
    if report.problems or dry_run:
        outer.rollback()
    else:
        outer.commit()
    return report
