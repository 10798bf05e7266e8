"""core.api_tokens on both backends: who may issue and revoke, scopes, service accounts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.access import AccessDenied, Viewer
from core.api_tokens import (
    Scope,
    TokenError,
    TokenRejected,
    authenticate_token,
    create_service_account,
    issue_token,
    list_tokens,
    parse_scopes,
    revoke_token,
    token_state,
)
from core.notify.routes import operators, site_on_duty
from core.timeutil import utcnow
from core.users import authenticate
from models import Role


def test_scopes_are_known_names_in_a_fixed_order() -> None:
    assert parse_scopes(["ACKNOWLEDGE", "read", "read"]) == [Scope.READ, Scope.ACKNOWLEDGE]
    assert parse_scopes(None) == [Scope.READ]
    with pytest.raises(TokenError) as raised:
        parse_scopes(["root"])
    assert "root" in raised.value.localized("ko") and "범위" in raised.value.localized("ko")


def test_people_manage_their_own_tokens_and_admins_everyone_s(
    db_session, factory, settings
) -> None:
    admin = Viewer.of(factory.user(Role.ADMIN))
    nurse = factory.user(Role.CAREGIVER)
    other = factory.user(Role.CAREGIVER)
    own = issue_token(
        db_session, settings, Viewer.of(nurse), user_id=nurse.id, name="watch", scopes=["read"]
    )
    with pytest.raises(AccessDenied):
        issue_token(db_session, settings, Viewer.of(nurse), user_id=other.id, name="x")
    with pytest.raises(AccessDenied):
        revoke_token(db_session, Viewer.of(other), own.row.id)
    with pytest.raises(AccessDenied):
        list_tokens(db_session, Viewer.of(nurse))  # everyone's: admins only
    assert [t.id for t in list_tokens(db_session, Viewer.of(nurse), nurse.id)] == [own.row.id]
    for_other = issue_token(db_session, settings, admin, user_id=other.id, name="board")
    assert {t.id for t in list_tokens(db_session, admin)} >= {own.row.id, for_other.row.id}
    with pytest.raises(TokenError):
        issue_token(db_session, settings, admin, user_id=other.id, name="  ")
    with pytest.raises(TokenError):
        issue_token(
            db_session, settings, admin, user_id=other.id, name="old",
            expires_at=utcnow() - timedelta(seconds=1),
        )  # fmt: skip

    identity = authenticate_token(db_session, settings, own.secret)
    assert identity.viewer.user_id == nurse.id and identity.allows(Scope.READ)
    assert not identity.allows(Scope.ACKNOWLEDGE)
    revoke_token(db_session, admin, own.row.id)
    assert token_state(own.row) == "revoked"
    with pytest.raises(TokenRejected):
        authenticate_token(db_session, settings, own.secret)
    with pytest.raises(TokenRejected):
        authenticate_token(db_session, settings, "not-a-token")


def test_service_accounts_never_sign_in_and_are_never_told(db_session, factory) -> None:
    admin = Viewer.of(factory.user(Role.ADMIN))
    site = factory.site()
    person = factory.user(Role.OPERATOR, site_id=site.id)
    board = create_service_account(
        db_session, admin, username="board", role=Role.OPERATOR, site_id=site.id
    )
    assert board.is_service and board.role is Role.OPERATOR
    assert authenticate(db_session, "board", "whatever-password") is None
    told = {user.id for user in operators(db_session, site.id)}
    assert person.id in told and board.id not in told
    assert board.id not in {user.id for user in site_on_duty(db_session, site.id, 1)}
    with pytest.raises(TokenError):
        create_service_account(db_session, admin, username="kin", role=Role.FAMILY)
    with pytest.raises(AccessDenied):
        create_service_account(db_session, Viewer.of(person), username="x2", role=Role.OPERATOR)
