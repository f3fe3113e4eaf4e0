"""The adversarial Flask app behind :class:`safemedia.contrib.flask.SafeMedia` (gunicorn)."""

from __future__ import annotations

from flask import Flask, Response, jsonify, send_from_directory

from safemedia.contrib.flask import SafeMedia
from safemedia.runtime import Runtime
from tests.adversarial.apps import content

app = Flask(__name__, static_folder=None)
runtime = Runtime()  # Config.load(): $SAFEMEDIA_CONFIG
content.bomb()  # made before serving, so a timed request measures only safemedia's refusal
SafeMedia(app, runtime=runtime)


def _response(body: bytes, media_type: str | None, **headers: str) -> Response:
    response = Response(body, headers=headers)
    if media_type is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = media_type
    return response


@app.get("/static/<name>")
def static_file(name: str) -> Response:
    return send_from_directory(content.STATIC, name)


@app.get("/typed/<kind>/<name>")
def typed(kind: str, name: str) -> Response:
    body, label = content.typed(kind, name)
    return _response(body, label)


@app.get("/gzip/<int:times>/<name>")
def gzipped(times: int, name: str) -> Response:
    body, coding = content.gzipped(times, name)
    return _response(body, "image/jpeg", **{"Content-Encoding": coding})


@app.get("/bomb.png")
def bomb() -> Response:
    return _response(content.bomb(), "image/png", **{"Content-Encoding": "gzip"})


@app.get("/any/<path:rest>")
def anything(rest: str) -> Response:
    """Whatever the path says, the first listed image (for URLs full of tricks)."""
    return _response(content.image("listed-a.jpg"), "image/jpeg")


@app.get("/page/<int:number>")
def page(number: int) -> Response:
    return Response(content.page(number), mimetype="text/html")


@app.get("/_stats")
def stats() -> Response:
    return jsonify(content.stats(runtime))
