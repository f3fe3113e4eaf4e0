"""A Flask app behind the SafeMedia extension; images served with ``send_from_directory``."""

from __future__ import annotations

from flask import Flask, Response, request, send_file, send_from_directory

from safemedia.contrib.flask import SafeMedia
from tests.apps import wsgi_routes as routes
from tests.apps.common import IMAGES, test_runtime

app = Flask(__name__, static_folder=None)
runtime = test_runtime()
SafeMedia(app, runtime=runtime)


@app.get("/static/<path:name>")
def static_file(name: str) -> Response:
    return send_from_directory(IMAGES, name)


@app.get("/file/<name>")
def file(name: str) -> Response:
    return send_file(IMAGES / name)


@app.get("/stream/<name>")
def stream(name: str) -> Response:
    encoding = request.args.get("encoding", "")
    body = routes.encoded(routes.image(name), encoding)
    response = Response(routes.chunks(body))
    kind = routes.media_type(name, request.args.get("type"))
    if kind:
        response.headers["Content-Type"] = kind
    else:
        del response.headers["Content-Type"]
    if encoding:
        response.headers["Content-Encoding"] = encoding
    return response


@app.get("/partial/<name>")
def partial(name: str) -> Response:
    body = routes.image(name)
    return Response(
        body[:100],
        status=206,
        mimetype="image/jpeg",
        headers={"Content-Range": f"bytes 0-99/{len(body)}"},
    )


@app.get("/gated")
def gated() -> Response:
    return Response(routes.gated(request.args["key"]), mimetype="text/plain")


@app.get("/text")
def text() -> str:
    return "hello"


@app.get("/_detections")
def detections() -> Response:
    return Response(routes.detections_body(runtime), mimetype="application/json")
