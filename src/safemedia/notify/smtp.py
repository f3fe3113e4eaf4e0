"""Sending one message with aiosmtplib, configured by :class:`~safemedia.config.SmtpConfig`."""

from __future__ import annotations

import asyncio
import ssl
from email.message import EmailMessage

import aiosmtplib

from safemedia.config import SmtpConfig


class SendError(RuntimeError):
    """The message could not be handed to the SMTP server; the text says why."""


def _tls_context(smtp: SmtpConfig) -> ssl.SSLContext | None:
    if not (smtp.use_tls or smtp.starttls):
        return None
    return ssl.create_default_context(cafile=smtp.cafile)


async def send(message: EmailMessage, smtp: SmtpConfig, *, to: str) -> None:
    """Hand ``message`` to the server for ``to``; raises :class:`SendError` on any failure."""
    try:
        await aiosmtplib.send(
            message,
            sender=smtp.sender,
            recipients=[to],
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.resolved_password() if smtp.username else None,
            use_tls=smtp.use_tls,
            start_tls=smtp.starttls and not smtp.use_tls,
            tls_context=_tls_context(smtp),
            timeout=smtp.timeout,
        )
    except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise SendError(f"{smtp.host}:{smtp.port}: {type(exc).__name__}: {exc}") from exc


def send_now(message: EmailMessage, smtp: SmtpConfig, *, to: str) -> None:
    """:func:`send` from synchronous code (the CLI), on a private event loop."""
    asyncio.run(send(message, smtp, to=to))
