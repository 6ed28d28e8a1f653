"""Real mail servers on 127.0.0.1 for the email tests: Dovecot IMAP (the Debian
package `dovecot-imapd`, run unprivileged from a config in a temp dir, one
static password) and aiosmtpd for SMTP (recording what it receives)."""

from __future__ import annotations

import contextlib
import getpass
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.stack import free_port

PASSWORD = "s3cret-mail-pw"


@dataclass
class Dovecot:
    host: str
    port: int
    user: str
    password: str
    root: Path

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        """Put a mail in the mailbox, as the customer's mail server would."""
        with self.session(folder) as imap:
            status, _ = imap.append(folder, None, None, raw)
            assert status == "OK"

    def flags(self, folder: str = "INBOX") -> dict[int, str]:
        with self.session(folder) as imap:
            _, data = imap.uid("FETCH", "1:*", "(FLAGS)")
        found = {}
        for line in data:
            if isinstance(line, bytes) and b"UID" in line:
                parts = line.decode()
                uid = int(parts.split("UID ")[1].split()[0].rstrip(")"))
                found[uid] = parts
        return found

    @contextlib.contextmanager
    def session(self, folder: str = "INBOX") -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4(self.host, self.port)
        try:
            imap.login(self.user, self.password)
            imap.select(folder)
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()


def _binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None)


@contextlib.contextmanager
def dovecot_server(user: str = "sales@hub.example") -> Iterator[Dovecot]:
    binary = _binary()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("dovecot is not installed; .ci/run installs dovecot-imapd")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd)")
    # Not under pytest's tmp_path: its parents are 0700, and Dovecot's mail
    # processes run as another user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="scrm-dovecot-"))
    os.chmod(root, 0o755)
    for name in ("run", "state", "mail", "home"):
        (root / name).mkdir()
        os.chmod(root / name, 0o777)
    port = free_port()
    if os.geteuid() == 0:
        login_user, internal_user, internal_group, uid, gid = "dovenull", "dovecot", "dovecot", 65534, 65534
    else:
        me = getpass.getuser()
        login_user = internal_user = me
        internal_group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip() or me
        uid, gid = os.getuid(), os.getgid()
    config = root / "dovecot.conf"
    config.write_text(f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 0
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
""")
    process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                    output = process.stdout.read().decode() if process.stdout and process.poll() is not None else ""
                    raise RuntimeError(f"dovecot did not start: {output} {log}") from None
                time.sleep(0.05)
        yield Dovecot(host="127.0.0.1", port=port, user=user, password=PASSWORD, root=root)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SmtpServer:
    host: str
    port: int
    user: str
    password: str
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's name)
        if address in self.server.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):  # noqa: N802
        self.server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.server.received.append(message_from_bytes(envelope.original_content or envelope.content,
                                                       policy=policy.default))
        return "250 Message accepted"


@contextlib.contextmanager
def smtp_server(user: str = "sales@hub.example", password: str = PASSWORD) -> Iterator[SmtpServer]:
    server = SmtpServer(host="127.0.0.1", port=free_port(), user=user, password=password)

    def authenticate(smtp, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
            and auth_data.password.decode() == password
        return AuthResult(success=ok)

    # Plain AUTH without TLS: only ever on 127.0.0.1 in tests.
    controller = Controller(_Handler(server), hostname=server.host, port=server.port, authenticator=authenticate,
                            auth_require_tls=False, auth_required=True)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def poller_account(host: str = "127.0.0.1", port: int = 143, user: str = "sales",
                   password: str = "pw") -> tuple[Any, Any]:
    """An email adapter and the account a standalone ImapPoller reads (`sales@hub.example` on
    `host`:`port`, plain IMAP), for tests that run the poller without a hub."""
    from channels.email.adapter import EmailAdapter
    from crm_core.ports import AccountRef

    adapter = EmailAdapter()
    creds = adapter.credentials_model.model_validate({
        "address": "sales@hub.example", "imap_host": host, "imap_port": port, "imap_security": "none",
        "smtp_host": "127.0.0.1", "smtp_port": 25, "smtp_security": "none", "username": user,
        "password": password}).model_dump()
    return adapter, AccountRef(id=1, kind="email", api_base=None, credentials=creds,
                               settings=adapter.settings_model.model_validate({}).model_dump())
