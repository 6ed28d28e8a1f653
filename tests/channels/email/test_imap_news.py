"""The IMAP poller's watch for a new mail announced outside the commands it waits for (an
untagged EXISTS aioimaplib drops): a change of the mailbox's size is news, a repeat is not."""

from __future__ import annotations

from types import SimpleNamespace

from channels.email.imap import ImapPoller
from tests.fakes.mail import poller_account


def poller() -> ImapPoller:
    adapter, account = poller_account()

    async def nothing(*_args) -> None:
        return None

    return ImapPoller(adapter, account, nothing, nothing)


def test_a_changed_size_is_news_a_repeated_one_is_not_and_idle_pushes_are_left_to_idle():
    handled: list[bytes] = []
    protocol = SimpleNamespace(pending_sync_command=None, _untagged_response=handled.append)
    watching = poller()
    watching._notice_news(SimpleNamespace(protocol=protocol))

    protocol._untagged_response(b"* 3 EXISTS")
    assert watching._news
    watching._news = False  # (what fetch_new does before it searches)
    protocol._untagged_response(b"* 3 EXISTS")  # a server that repeats the size in every answer
    protocol._untagged_response(b"* 1 FETCH (UID 7 FLAGS (\\Seen))")
    assert not watching._news
    protocol._untagged_response(b"* 4 EXISTS")
    assert watching._news
    watching._news = False
    protocol.pending_sync_command = SimpleNamespace(name="IDLE")  # in IDLE, the push wakes the poller
    protocol._untagged_response(b"* 5 EXISTS")
    assert not watching._news
    assert len(handled) == 5  # aioimaplib still handles every line
