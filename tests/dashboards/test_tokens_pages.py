"""API tokens on the admin page (everyone's, service accounts) and the Account page (one's own)."""

from __future__ import annotations

from sqlalchemy import select

from core.api_tokens import digest
from core.users import authenticate
from models import ApiToken, AuditEntry, Role
from tests.conftest import TEST_SECRET, make_test_settings
from tests.dashboards.conftest import no_exception, texts
from tests.factories import Factory


def _token_row(app_db, secret: str, tmp_path) -> ApiToken | None:
    settings = make_test_settings(tmp_path, secret_key=TEST_SECRET)
    with app_db.session() as session:
        return session.scalar(select(ApiToken).where(ApiToken.digest == digest(settings, secret)))


def test_admin_makes_a_service_account_and_a_token_for_it_shown_once(
    open_app, app_db, tmp_path
) -> None:
    at = open_app("admin", page="admin")
    no_exception(at)
    at.text_input(key="admin.service.username").input("nurse-call")
    at.text_input(key="admin.service.name").input("Nurse call board")
    at.button(key="FormSubmitter:admin.service-Create service account").click().run()
    no_exception(at)
    assert "Service account nurse-call created." in texts(at)
    service = app_db.user("nurse-call")
    assert service.is_service and service.role.value == "operator"
    with app_db.session() as session:
        # It never signs in to the app, whatever its password.
        assert authenticate(session, "nurse-call", "anything-at-all") is None

    at.selectbox(key="admin.tokens.owner").select(service.id)
    at.text_input(key="admin.tokens.name").input("board")
    at.multiselect(key="admin.tokens.scopes").select("acknowledge")
    at.button(key="FormSubmitter:admin.tokens.issue-Create token").click().run()
    no_exception(at)
    assert "shown only this once" in texts(at)
    secret = at.code[0].value
    row = _token_row(app_db, secret, tmp_path)
    assert row is not None and row.user_id == service.id
    assert row.scopes == ["read", "acknowledge"] and row.expires_at is not None
    at.run()
    assert not at.code  # shown once only
    listed = next(df.value for df in at.dataframe if "Token" in df.value.columns)
    assert f"{row.prefix}…" in list(listed["Token"])
    assert "nurse-call" in list(listed["User"])

    at.selectbox(key="admin.tokens.revoke_pick").select(row.id)
    at.button(key="admin.tokens.revoke").click().run()
    no_exception(at)
    with app_db.session() as session:
        assert session.get(ApiToken, row.id).revoked_at is not None
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == str(row.id))
        ).all()
        assert {"token.create", "token.revoke"} <= set(actions)


def test_a_caregiver_manages_their_own_tokens_on_the_account_page(
    open_app, app_db, tmp_path
) -> None:
    at = open_app("caregiver1", page="account")
    no_exception(at)
    at.text_input(key="account.tokens.name").input("내 시계")
    at.number_input(key="account.tokens.days").set_value(0)
    at.button(key="FormSubmitter:account.tokens.issue-토큰 만들기").click().run()
    no_exception(at)
    assert "이번 한 번만" in texts(at)
    row = _token_row(app_db, at.code[0].value, tmp_path)
    caregiver = app_db.user("caregiver1")
    assert row is not None and row.user_id == caregiver.id and row.expires_at is None
    assert at.selectbox(key="account.tokens.revoke_pick").options


def test_family_users_see_no_tokens(open_app, app_db) -> None:
    with app_db.session() as session:
        family = Factory(session).user(Role.FAMILY, username="tokens.family")
        session.commit()
    at = open_app(family.username, page="account")
    no_exception(at)
    assert "API" not in texts(at)
