"""The app shell: sign-in, session expiry, navigation per role, sign-out, one-click ack links."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from core.alerts.lifecycle import Subject, raise_alert
from core.notify.links import make_ack_token
from core.timeutil import utcnow
from dashboards.components.auth import SESSION_COOKIE, SESSION_TOKEN_KEY
from models import (
    Alert,
    AlertStatus,
    AppSession,
    AuditEntry,
    RuleKind,
    Severity,
    SignInFailure,
    User,
)
from tests.conftest import make_test_settings
from tests.dashboards.conftest import SIGNED_IN_AT_KEY, VIEWER_KEY, no_exception, texts


def test_sign_in_with_the_form_and_sign_out(open_app, app_db) -> None:
    at = open_app()
    no_exception(at)
    assert VIEWER_KEY not in at.session_state
    at.text_input[0].input("caregiver1")
    at.text_input[1].input(app_db.passwords["caregiver1"])
    at.button[0].click().run()
    no_exception(at)
    viewer = at.session_state[VIEWER_KEY]
    assert viewer.username == "caregiver1"
    assert viewer.language == "ko"  # the demo caregivers read Korean
    sign_out = [b for b in at.sidebar.button if b.label == "로그아웃"]
    assert sign_out
    sign_out[0].click().run()
    assert VIEWER_KEY not in at.session_state
    assert "로그아웃되었습니다." in texts(at)


def test_wrong_password_is_refused_without_saying_which_part(open_app) -> None:
    at = open_app()
    at.text_input[0].input("operator")
    at.text_input[1].input("not-the-password")
    at.button[0].click().run()
    no_exception(at)
    assert VIEWER_KEY not in at.session_state
    assert "username or password is not right" in texts(at)


def sign_in_with_form(at, username: str, password: str):
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    no_exception(at)
    return at


def cookie_scripts(at) -> list[str]:
    """The session-cookie scripts the page sent to the browser."""
    return [h.value for h in at.html if SESSION_COOKIE in h.value]


def test_a_reload_keeps_the_session_in_a_cookie_until_sign_out(open_app, app_db, tmp_path) -> None:
    at = sign_in_with_form(open_app(), "operator", app_db.passwords["operator"])
    token = at.session_state[SESSION_TOKEN_KEY]
    assert token.startswith("s1.")
    assert "session" not in at.query_params  # the address no longer carries it
    (script,) = cookie_scripts(at)
    timeout = int(make_test_settings(tmp_path).session_timeout.total_seconds())
    assert f'"{token}"' in script and "SameSite=Strict" in script and "Path=/" in script
    assert f"maxAge = {timeout}" in script or f"maxAge = {timeout - 1}" in script
    # A reload: a new browser session (empty state) sending the cookie.
    reloaded = open_app(cookies={SESSION_COOKIE: token})
    no_exception(reloaded)
    assert reloaded.session_state[VIEWER_KEY].username == "operator"
    assert "session" not in reloaded.query_params
    # Signing out ends the server-side session and clears the cookie; the tab says "signed out"
    # (the cookie it opened with is not read again).
    sign_out = [b for b in reloaded.sidebar.button if b.label == "Sign out"]
    sign_out[0].click().run()
    assert VIEWER_KEY not in reloaded.session_state
    assert "You have signed out." in texts(reloaded) and "expired" not in texts(reloaded)
    (cleared,) = cookie_scripts(reloaded)
    assert 'value = ""' in cleared and "maxAge = 0" in cleared
    # A copy of the cookie no longer signs anyone in.
    again = open_app(cookies={SESSION_COOKIE: token})
    assert VIEWER_KEY not in again.session_state
    assert "session has expired" in texts(again)
    # The other tab that still holds it is signed out on its next run.
    at.run()
    assert VIEWER_KEY not in at.session_state


def test_a_token_in_the_address_still_resumes_when_cookies_are_blocked(open_app, app_db) -> None:
    at = sign_in_with_form(open_app(), "operator", app_db.passwords["operator"])
    token = at.session_state[SESSION_TOKEN_KEY]
    # The page's script put the token in the address because the browser refused the cookie.
    reloaded = open_app(query={"session": token})
    assert reloaded.session_state[VIEWER_KEY].username == "operator"
    reloaded.switch_page("app_pages/alerts.py").run()
    assert reloaded.query_params["session"] == token  # page switches keep it
    sign_out = [b for b in reloaded.sidebar.button if b.label == "Sign out"]
    sign_out[0].click().run()
    assert "session" not in reloaded.query_params


def test_a_reloaded_session_still_times_out_on_the_server(open_app, app_db) -> None:
    at = sign_in_with_form(open_app(), "operator", app_db.passwords["operator"])
    token = at.session_state[SESSION_TOKEN_KEY]
    with app_db.session() as session:
        row = session.get(AppSession, token.split(".")[1])
        row.signed_in_at = utcnow() - timedelta(hours=9)
        session.commit()
    reloaded = open_app(cookies={SESSION_COOKIE: token})
    assert VIEWER_KEY not in reloaded.session_state
    assert "session has expired" in texts(reloaded)
    (cleared,) = cookie_scripts(reloaded)
    assert "maxAge = 0" in cleared
    forged = open_app(cookies={SESSION_COOKIE: token[:-2] + "xx"})
    assert VIEWER_KEY not in forged.session_state


def test_repeated_wrong_passwords_lock_sign_in_even_with_the_right_one(open_app, app_db) -> None:
    at = open_app()
    for _ in range(5):
        sign_in_with_form(at, "caregiver4", "not-the-password")
    sign_in_with_form(at, "caregiver4", app_db.passwords["caregiver4"])
    assert VIEWER_KEY not in at.session_state
    assert "Too many failed sign-ins" in texts(at)
    with app_db.session() as session:
        session.execute(delete(SignInFailure).where(SignInFailure.username == "caregiver4"))
        session.commit()


def test_empty_form_says_what_is_missing(open_app) -> None:
    at = open_app()
    at.button[0].click().run()
    assert "Enter your username and password." in texts(at)


def test_an_expired_session_asks_to_sign_in_again(open_app) -> None:
    at = open_app("operator")
    at.session_state[SIGNED_IN_AT_KEY] = utcnow() - timedelta(hours=9)
    at.run()
    assert VIEWER_KEY not in at.session_state
    assert "session has expired" in texts(at)


def test_a_deactivated_user_is_signed_out(open_app, app_db) -> None:
    at = open_app("caregiver5")
    with app_db.session() as session:
        session.scalar(select(User).where(User.username == "caregiver5")).active = False
        session.commit()
    try:
        at.run()
        assert VIEWER_KEY not in at.session_state
    finally:
        with app_db.session() as session:
            session.scalar(select(User).where(User.username == "caregiver5")).active = True
            session.commit()


def test_navigation_follows_the_role(open_app) -> None:
    from core.access import Viewer
    from dashboards.navigation import pages_for

    for username, expected, absent in (
        ("caregiver1", {"overview", "alerts", "resident", "account"}, {"devices", "admin"}),
        ("operator", {"devices", "rules", "audit"}, {"admin"}),
        ("admin", {"admin", "devices"}, set()),
    ):
        at = open_app(username)
        no_exception(at)
        viewer: Viewer = at.session_state[VIEWER_KEY]
        names = {spec.name for specs in pages_for(viewer).values() for spec in specs}
        assert expected <= names and not (absent & names), username


def test_a_caregiver_cannot_open_an_operator_page(open_app) -> None:
    at = open_app("caregiver1")
    try:
        at.switch_page("app_pages/devices.py").run()
    except ValueError:
        return  # not even registered for this role
    assert "권한이 없습니다" in texts(at) or not at.dataframe


def test_a_one_click_link_acknowledges_as_its_recipient(open_app, app_db, tmp_path) -> None:
    caregiver = app_db.user("caregiver2")
    with app_db.session() as session:
        raised = raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=Severity.CRITICAL,
            subject=Subject("resident", "link-test", site_id=app_db.site_id),
            title="Fall in room 2 (link test)",
        )
        session.commit()
        alert_id = raised.alert.id
    settings = make_test_settings(tmp_path)
    token = make_ack_token(
        settings, alert_id, caregiver.id, utcnow() + timedelta(hours=1), opening=0
    )
    at = open_app(query={"ack": token})
    no_exception(at)
    assert "Fall in room 2 (link test)" in texts(at)
    with app_db.session() as session:
        alert = session.get(Alert, alert_id)
        assert alert.status is AlertStatus.ACKNOWLEDGED
        assert alert.acknowledged_by == caregiver.id
        assert session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "alert.acknowledge", AuditEntry.target_id == str(alert_id)
            )
        )
    assert "ack" not in at.query_params


def test_a_tampered_link_is_refused_in_words(open_app) -> None:
    at = open_app(query={"ack": "bogus.token"})
    no_exception(at)
    assert "link is not valid" in texts(at)


def test_account_page_changes_language_and_quiet_hours(open_app, app_db) -> None:
    at = open_app("operator", page="account")
    no_exception(at)
    at.selectbox[0].select("ko")
    at.checkbox[0].check()
    at.button[0].click().run()
    no_exception(at)
    assert "환경 설정을 저장했습니다." in texts(at)
    with app_db.session() as session:
        user = session.scalar(select(User).where(User.username == "operator"))
        assert user.language == "ko" and user.quiet_start is not None
        user.language = "en"
        user.quiet_start = user.quiet_end = None
        session.commit()
