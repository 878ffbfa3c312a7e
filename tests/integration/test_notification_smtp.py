"""The SMTP sender delivers a reminder to a real SMTP conversation on localhost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.cycles.notifications import NotificationRead, SmtpSender


class RecordingSmtpServer:
    """Just enough SMTP (RFC 5321) to accept one message and remember it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, object]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(f"{line}\r\n".encode())

        say("220 localhost test SMTP")
        envelope: dict[str, object] = {"rcpt": []}
        while line := (await reader.readline()).decode().strip():
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                say("250 localhost")
            elif verb == "MAIL":
                envelope["from"] = line
                say("250 OK")
            elif verb == "RCPT":
                envelope["rcpt"].append(line)  # type: ignore[union-attr]
                say("250 OK")
            elif verb == "DATA":
                say("354 end with <CRLF>.<CRLF>")
                await writer.drain()
                body: list[str] = []
                while (data := (await reader.readline()).decode()) not in (".\r\n", ".\n", ""):
                    body.append(data)
                envelope["data"] = "".join(body)
                self.messages.append(envelope)
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                break
            else:
                say("250 OK")
            await writer.drain()
        writer.close()


async def test_smtp_sender_mails_recipients_and_hr() -> None:
    smtp = RecordingSmtpServer()
    server = await asyncio.start_server(smtp.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = SmtpSender(host="127.0.0.1", port=port, sender="tandem@example.com", hr_email="hr@example.com")
    notification = NotificationRead(
        notification_id="n-1",
        idempotency_key="c1/quality/goal_setting/escalation-hr",
        cycle_id="c1",
        department_id="quality",
        stage="goal_setting",
        kind="escalation_hr",
        recipients=[{"id": "E0274", "name": "Head of Quality", "email": "head.quality@example.com"}, {"id": "hr"}],
        pending=32,
        deadline=datetime(2026, 3, 1, tzinfo=UTC),
        message="quality: 32 goal(s) still missing",
        created_at=datetime(2026, 3, 2, tzinfo=UTC),
        delivery={},
    )
    async with server:
        await sender.send(notification)
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    rcpt = " ".join(message["rcpt"])  # type: ignore[arg-type]
    assert "head.quality@example.com" in rcpt and "hr@example.com" in rcpt
    assert "escalation hr: goal_setting" in str(message["data"])
    assert "32 goal(s) still missing" in str(message["data"])
