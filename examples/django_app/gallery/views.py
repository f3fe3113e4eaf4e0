"""Views of the example forum: the gallery, the upload form's target, the uploads."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_GET, require_POST

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}


def _uploads() -> Path:
    uploads: Path = settings.UPLOADS_DIR
    return uploads


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    """Every uploaded image, newest first, with the upload form."""
    files = [p for p in _uploads().iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    files.sort(key=lambda p: (-p.stat().st_mtime, p.name))
    images = [{"name": p.name, "url": reverse("uploaded", args=[p.name])} for p in files]
    context = {"images": images, "error": request.GET.get("error")}
    return render(request, "gallery/index.html", context)


@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    """Save an uploaded image under a safe, unused name."""
    file = request.FILES.get("image")
    name = get_valid_filename(Path(file.name or "x").name) if file else ""
    if file is None or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        query = urlencode({"error": "Choose a PNG, JPEG, GIF or WebP image."})
        return HttpResponseRedirect(f"{reverse('gallery')}?{query}")
    target = _uploads() / name
    counter = 1
    while target.exists():
        target = _uploads() / f"{Path(name).stem}-{counter}{Path(name).suffix}"
        counter += 1
    with target.open("wb") as out:
        for chunk in file.chunks():
            out.write(chunk)
    return HttpResponseRedirect(reverse("gallery"))


@require_GET
def uploaded(request: HttpRequest, name: str) -> FileResponse:
    """Serve an upload from disk (safemedia checks it on the way out)."""
    path = _uploads() / name
    if Path(name).name != name or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
        raise Http404(name)
    return FileResponse(path.open("rb"))
