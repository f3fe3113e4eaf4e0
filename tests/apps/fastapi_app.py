"""A FastAPI app serving uploads, with SafeMediaMiddleware added by ``add_middleware``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from safemedia.asgi import SafeMediaMiddleware
from tests.apps.common import IMAGES, decodes, detections_json, engine_runtime

runtime = engine_runtime()
app = FastAPI()
app.add_middleware(SafeMediaMiddleware, runtime=runtime)


@app.get("/uploads/{name}")
async def upload(name: str) -> FileResponse:
    return FileResponse(IMAGES / name)


@app.get("/hello")
async def hello() -> PlainTextResponse:
    return PlainTextResponse("hello")


@app.get("/_detections")
async def detections() -> JSONResponse:
    return JSONResponse({"detections": detections_json(runtime), "decodes": decodes(runtime)})
