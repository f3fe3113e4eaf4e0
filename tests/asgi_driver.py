"""Call an ASGI app in process with raw messages (no TestClient), recording what it sends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


@dataclass
class Result:
    messages: list[Message] = field(default_factory=list)

    @property
    def status(self) -> int:
        status: int = self.messages[0]["status"]
        return status

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0].get("headers", []))

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def http_scope(
    path: str,
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = (),
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "extensions": extensions or {},
    }


async def acall(app: App, scope: dict[str, Any]) -> Result:
    result = Result()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        result.messages.append(message)

    await app(scope, receive, send)
    return result


def call(app: App, path: str, method: str = "GET", **kwargs: Any) -> Result:
    return asyncio.run(acall(app, http_scope(path, method, **kwargs)))
