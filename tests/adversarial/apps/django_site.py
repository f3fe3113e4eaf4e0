"""The adversarial Django site: settings, URLs and WSGI app in one module (gunicorn).

``DJANGO_SETTINGS_MODULE=tests.adversarial.apps.django_site``. SafeMediaMiddleware sits above
WhiteNoise, which serves ``/static/``; the runtime is built from ``$SAFEMEDIA_CONFIG``.
"""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from safemedia.contrib.django import get_runtime
from tests.adversarial.apps import content

SECRET_KEY = "safemedia adversarial tests only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["safemedia.contrib.django"]
MIDDLEWARE = [
    "safemedia.contrib.django.SafeMediaMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
]
ROOT_URLCONF = __name__
STATIC_URL = "/static/"
STATIC_ROOT = content.STATIC
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}


def _response(body: bytes, media_type: str | None, **headers: str) -> HttpResponse:
    response = HttpResponse(body, headers=headers)
    if media_type is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = media_type
    return response


def typed(request: HttpRequest, kind: str, name: str) -> HttpResponse:
    body, label = content.typed(kind, name)
    return _response(body, label)


def gzipped(request: HttpRequest, times: int, name: str) -> HttpResponse:
    body, coding = content.gzipped(times, name)
    return _response(body, "image/jpeg", **{"Content-Encoding": coding})


def bomb(request: HttpRequest) -> HttpResponse:
    return _response(content.bomb(), "image/png", **{"Content-Encoding": "gzip"})


def anything(request: HttpRequest, rest: str) -> HttpResponse:
    """Whatever the path says, the first listed image (for URLs full of tricks)."""
    return _response(content.image("listed-a.jpg"), "image/jpeg")


def page(request: HttpRequest, number: int) -> HttpResponse:
    return HttpResponse(content.page(number), content_type="text/html")


def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(content.stats(get_runtime()))


urlpatterns = [
    path("typed/<str:kind>/<str:name>", typed),
    path("gzip/<int:times>/<str:name>", gzipped),
    path("bomb.png", bomb),
    path("any/<path:rest>", anything),
    path("page/<int:number>", page),
    path("_stats", stats),
]

application = get_wsgi_application()
content.bomb()  # made before serving, so a timed request measures only safemedia's refusal
