"""A small image-sharing forum in Flask: an upload form, a gallery, uploads served by the app.

safemedia is the one line ``SafeMedia(app)``; it reads ``safemedia.toml`` from the working
directory. Run from this folder::

    gunicorn --bind 127.0.0.1:8000 app:app      # or: flask --app app run --port 8000
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, abort, redirect, render_template, request, send_from_directory, url_for
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response

from safemedia.contrib.flask import SafeMedia

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 10 * 1024 * 1024
UPLOADS = Path(app.root_path) / "uploads"
SafeMedia(app)


@app.get("/")
def gallery() -> str:
    """Every uploaded image, newest first, with the upload form."""
    files = [p for p in UPLOADS.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    files.sort(key=lambda p: (-p.stat().st_mtime, p.name))
    images = [{"name": p.name, "url": url_for("uploaded", name=p.name)} for p in files]
    return render_template("gallery.html", images=images, error=request.args.get("error"))


@app.post("/upload")
def upload() -> Response:
    """Save an uploaded image under a safe, unused name."""
    file = request.files.get("image")
    name = secure_filename(file.filename or "") if file else ""
    if file is None or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        return redirect(url_for("gallery", error="Choose a PNG, JPEG, GIF or WebP image."))
    target = UPLOADS / name
    counter = 1
    while target.exists():
        target = UPLOADS / f"{Path(name).stem}-{counter}{Path(name).suffix}"
        counter += 1
    file.save(target)
    return redirect(url_for("gallery"))


@app.get("/uploads/<name>")
def uploaded(name: str) -> Response:
    """Serve an upload from disk (safemedia checks it on the way out)."""
    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        abort(404)
    return send_from_directory(UPLOADS, name)
