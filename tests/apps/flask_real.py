"""The Flask app with nothing stood in: ``SafeMedia(app)`` reads ``app.config["SAFEMEDIA"]`` (a
TOML path from ``SMTEST_CONFIG``) and runs the real engine and the SQLite store."""

from __future__ import annotations

import os

from flask import Flask, Response, send_from_directory

from safemedia.contrib.flask import SafeMedia
from tests.apps.common import IMAGES

app = Flask(__name__, static_folder=None)
app.config["SAFEMEDIA"] = os.environ["SMTEST_CONFIG"]
SafeMedia(app)


@app.get("/uploads/<path:name>")
def uploads(name: str) -> Response:
    return send_from_directory(IMAGES, name)
