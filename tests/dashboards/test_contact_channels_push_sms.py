"""The Admin page offers ntfy push and SMS contacts, with Korean labels, hints and errors."""

from __future__ import annotations

from sqlalchemy import select

from models import Channel, ContactChannel
from tests.dashboards.conftest import no_exception


def test_an_admin_adds_ntfy_and_sms_contacts_in_korean(open_app, app_db) -> None:
    owner = app_db.user("caregiver2")
    at = open_app("admin", page="admin", language="ko")
    at.selectbox(key="admin.channels.user").select(owner.id).run()
    kind = at.selectbox(key="admin.channel.kind")
    assert {"ntfy 푸시", "문자(SMS)"} <= set(kind.options)
    address = at.text_input(key="admin.channel.address")
    assert "+821012345678" in (address.help or "") and "ntfy" in (address.help or "")

    kind.select(Channel.SMS)
    address.input("010-1234-5678")
    at.button(key="admin.channel.go").click().run()
    no_exception(at)
    assert "국가 번호" in "\n".join(e.value for e in at.error)

    at.selectbox(key="admin.channel.kind").select(Channel.SMS)
    at.text_input(key="admin.channel.address").input("+82 10-1234-5678")
    at.button(key="admin.channel.go").click().run()
    no_exception(at)
    at.selectbox(key="admin.channel.kind").select(Channel.NTFY)
    at.text_input(key="admin.channel.address").input("https://ntfy.example.org/care-night")
    at.button(key="admin.channel.go").click().run()
    no_exception(at)
    with app_db.session() as session:
        saved = {
            (Channel(c.channel), c.address)
            for c in session.scalars(
                select(ContactChannel).where(ContactChannel.user_id == owner.id)
            )
        }
    assert (Channel.SMS, "+821012345678") in saved
    assert (Channel.NTFY, "https://ntfy.example.org/care-night") in saved
    assert {"문자(SMS)", "ntfy 푸시"} <= {
        cell for frame in at.dataframe for cell in frame.value.iloc[:, 0]
    }
