"""Email notifications: the outbox drained by a :class:`Notifier` thread with aiosmtplib."""

from safemedia.notify.notifier import Notifier, unverified_warning
from safemedia.notify.smtp import SendError, send, send_now

__all__ = ["Notifier", "SendError", "send", "send_now", "unverified_warning"]
