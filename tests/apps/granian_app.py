"""The Starlette test app under a server that advertises ``http.response.pathsend`` (granian).

Between SafeMediaMiddleware and the app sits a recorder of the message types the app sends, so
a test can show that ``FileResponse`` really sent ``http.response.pathsend`` (Starlette does only
when the server advertises the extension) and which extensions the server advertised.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.responses import JSONResponse

from safemedia.asgi import SafeMediaMiddleware
from tests.apps.starlette_app import app as starlette_app
from tests.apps.starlette_app import runtime

sent: Counter[str] = Counter()
extensions: dict[str, Any] = {}


async def _inner(scope: Any, receive: Any, send: Any) -> None:
    """Starlette's app (without its own SafeMediaMiddleware), message types counted."""
    if scope["type"] == "http" and scope["path"] == "/_sent":
        await JSONResponse({"sent": dict(sent), "extensions": sorted(extensions)})(
            scope, receive, send
        )
        return
    if scope["type"] == "http":
        extensions.update(scope.get("extensions") or {})

    async def counting_send(message: Any) -> None:
        sent[message["type"]] += 1
        await send(message)

    await starlette_app.router(scope, receive, counting_send)


app = SafeMediaMiddleware(_inner, runtime=runtime)
