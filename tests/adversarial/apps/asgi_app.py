"""The adversarial Starlette app behind :class:`safemedia.asgi.SafeMediaMiddleware` (uvicorn)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from safemedia.asgi import SafeMediaMiddleware
from safemedia.runtime import Runtime
from tests.adversarial.apps import content

runtime = Runtime()  # Config.load(): $SAFEMEDIA_CONFIG
content.bomb()  # made before serving, so a timed request measures only safemedia's refusal


def _response(body: bytes, media_type: str | None, **headers: str) -> Response:
    response = Response(body, media_type=media_type, headers=headers)
    if media_type is None and "content-type" in response.headers:
        del response.headers["content-type"]
    return response


async def typed(request: Request) -> Response:
    body, label = content.typed(request.path_params["kind"], request.path_params["name"])
    return _response(body, label)


async def gzipped(request: Request) -> Response:
    name = request.path_params["name"]
    body, coding = content.gzipped(int(request.path_params["times"]), name)
    return _response(body, "image/jpeg", **{"content-encoding": coding})


async def bomb(request: Request) -> Response:
    return _response(content.bomb(), "image/png", **{"content-encoding": "gzip"})


async def anything(request: Request) -> Response:
    """Whatever the path says, the first listed image (for URLs full of tricks)."""
    return _response(content.image("listed-a.jpg"), "image/jpeg")


async def page(request: Request) -> Response:
    return HTMLResponse(content.page(int(request.path_params["number"])))


async def stats(request: Request) -> Response:
    return JSONResponse(content.stats(runtime))


app = SafeMediaMiddleware(
    Starlette(
        routes=[
            Route("/typed/{kind}/{name}", typed),
            Route("/gzip/{times:int}/{name}", gzipped),
            Route("/bomb.png", bomb),
            Route("/any/{rest:path}", anything),
            Route("/page/{number:int}", page),
            Route("/_stats", stats),
            Mount("/static", StaticFiles(directory=content.STATIC)),
        ]
    ),
    runtime=runtime,
)
