"""Sign-in throttling, constant-time failures, and server-side app sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import security, users
from core.i18n import translate
from core.sessions import end_session, resume_session, start_session
from core.settings import Settings
from core.users import FAILURE_WINDOW, SignInLocked, sign_in
from models import AppSession, AuditEntry
from tests.factories import DEFAULT_PASSWORD, Factory

T0 = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def test_fifty_wrong_passwords_then_the_right_one_is_refused_while_locked(
    db_session: Session, factory: Factory
) -> None:
    user = factory.user(username="kim.op")
    refused = 0
    for attempt in range(50):
        try:
            assert (
                sign_in(
                    db_session, "kim.op", "wrong password!", now=T0 + timedelta(seconds=attempt)
                )
                is None
            )
        except SignInLocked:
            refused += 1
    # 5 failures lock for 30 s; the one try after that, failing, locks for 60 s: 44 refused.
    assert refused == 44
    with pytest.raises(SignInLocked) as raised:
        sign_in(db_session, "kim.op", DEFAULT_PASSWORD, now=T0 + timedelta(seconds=50))
    # Plain words, in both languages, saying when to try again.
    assert "Try again in 1 minute" in str(raised.value)
    assert "분 후에 다시 시도하세요" in raised.value.localized("ko")
    assert raised.value.until == T0 + timedelta(seconds=34) + 2 * users.FIRST_LOCK
    # Once the lock is over the right password works, and clears the count.
    assert sign_in(db_session, "kim.op", DEFAULT_PASSWORD, now=raised.value.until) == user
    assert sign_in(db_session, "kim.op", "wrong password!", now=raised.value.until) is None
    assert sign_in(db_session, "kim.op", DEFAULT_PASSWORD, now=raised.value.until) == user
    actions = list(
        db_session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == "kim.op"))
    )
    assert actions.count("user.sign_in_failed") == 50 - refused + 1
    assert actions.count("user.sign_in_locked") == refused + 1


def test_the_lock_grows_with_each_further_failure(db_session: Session, factory: Factory) -> None:
    factory.user(username="kim.op")
    at = T0
    waits = []
    for _ in range(users.USER_FAILURE_LIMIT + 3):
        while True:
            try:
                sign_in(db_session, "kim.op", "wrong password!", now=at)
                break
            except SignInLocked as locked:
                waits.append(locked.until - at)
                at = locked.until
    assert waits == [users.FIRST_LOCK * 2**n for n in range(3)]


def test_an_unknown_username_locks_the_same_way(db_session: Session) -> None:
    for _ in range(users.USER_FAILURE_LIMIT):
        assert sign_in(db_session, "nobody", "wrong password!", now=T0) is None
    with pytest.raises(SignInLocked) as raised:
        sign_in(db_session, "nobody", "wrong password!", now=T0)
    # The same words whether or not the account exists.
    # A 30-second lock reads "1 minute", not "1 minute(s)".
    assert raised.value.key == "errors.sign_in_locked.one"
    message = translate(raised.value.key, "en", **raised.value.params)
    assert "this username" in message and message.endswith("in 1 minute.")


def test_one_client_guessing_many_usernames_is_throttled(db_session: Session) -> None:
    for n in range(users.CLIENT_FAILURE_LIMIT):
        assert (
            sign_in(db_session, f"guess{n}", "wrong password!", client="203.0.113.9", now=T0)
            is None
        )
    with pytest.raises(SignInLocked):
        sign_in(db_session, "another", "wrong password!", client="203.0.113.9", now=T0)
    # Another client is not affected, and the window forgets.
    assert sign_in(db_session, "another", "wrong password!", client="198.51.100.1", now=T0) is None
    later = T0 + FAILURE_WINDOW + timedelta(seconds=1)
    assert sign_in(db_session, "another2", "wrong", client="203.0.113.9", now=later) is None


def test_unknown_and_inactive_users_are_checked_against_a_dummy_hash(
    db_session: Session, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    inactive = factory.user(username="gone.user")
    inactive.active = False
    checked: list[str] = []
    real = security._hasher

    class Spy:
        """The real hasher, noting every hash it verifies against."""

        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, password_hash: str, password: str) -> bool:
            checked.append(password_hash)
            return real.verify(password_hash, password)

    monkeypatch.setattr(security, "_hasher", Spy())
    assert users.authenticate(db_session, "nobody", DEFAULT_PASSWORD) is None
    assert users.authenticate(db_session, "gone.user", DEFAULT_PASSWORD) is None
    # Each failure did an Argon2 verification, with the same parameters as a real hash.
    assert len(checked) == 2
    assert all(h.startswith("$argon2id$") for h in checked)
    assert checked[0].split("$")[3] == inactive.password_hash.split("$")[3]


def test_a_session_resumes_until_it_times_out_or_is_ended(
    db_session: Session, factory: Factory, settings: Settings
) -> None:
    user = factory.user()
    token = start_session(db_session, settings, user, now=T0)
    assert resume_session(db_session, settings, token, now=T0 + timedelta(hours=1)) == (user, T0)
    # Forged or altered tokens name nothing.
    session_id = token.split(".")[1]
    assert resume_session(db_session, settings, f"s1.{session_id}.forged", now=T0) is None
    assert resume_session(db_session, settings, token[:-1] + "x", now=T0) is None
    # The timeout counts from sign-in, on the server: the token cannot outlive it.
    late = T0 + settings.session_timeout + timedelta(seconds=1)
    assert resume_session(db_session, settings, token, now=late) is None
    db_session.flush()
    assert db_session.get(AppSession, session_id) is None

    second = start_session(db_session, settings, user, now=T0)
    end_session(db_session, settings, second)
    assert resume_session(db_session, settings, second, now=T0) is None


def test_a_deactivated_users_session_cannot_be_resumed(
    db_session: Session, factory: Factory, settings: Settings
) -> None:
    user = factory.user()
    token = start_session(db_session, settings, user, now=T0)
    user.active = False
    assert resume_session(db_session, settings, token, now=T0) is None
