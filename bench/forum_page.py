"""A forum thread page, as the example apps serve: 20 posts, about 9 kB of HTML.

The page both throughput benchmarks serve beside their hello-world text endpoint (Starlette in
:mod:`bench.middleware_apps`, Flask in :mod:`bench.wsgi_apps`): what a request with real work
costs. Jinja2 only, so a bare app that renders it imports nothing of safemedia.
"""

from __future__ import annotations

from jinja2 import Environment

THREAD_PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/static/forum.css"></head>
<body><header><h1>{{ title }}</h1><nav><a href="/">Forum</a> &rsaquo; {{ board }}</nav></header>
<main>{% for post in posts %}
<article id="p{{ post.id }}"><aside><img src="/avatars/{{ post.author }}.png" alt="">
<b>{{ post.author }}</b><small>{{ post.joined }}, {{ post.count }} posts</small></aside>
<section><time>{{ post.time }}</time>{% for para in post.text %}<p>{{ para }}</p>{% endfor %}
{% if post.image %}<img src="/uploads/{{ post.image }}" alt="{{ post.author }}'s photo">{% endif %}
</section></article>{% endfor %}</main>
<footer>Page {{ page }} of {{ pages }}</footer></body></html>"""
)

_WORDS = (
    "photo",
    "light",
    "lens",
    "trip",
    "weekend",
    "harbour",
    "bridge",
    "evening",
    "colour",
    "frame",
)


def thread(page: int) -> dict[str, object]:
    """The template's context for page ``page`` of the thread."""
    words = list(_WORDS)
    posts = [
        {
            "id": page * 100 + i,
            "author": f"member{i % 7}",
            "joined": "March 2024",
            "count": 40 + i * 3,
            "time": f"2026-11-{1 + i % 28:02d} 18:{i:02d}",
            "text": [" ".join(words[(i + j) % 10 :] + words[: (i + j) % 10]) for j in range(3)],
            "image": f"{page}-{i}.jpg" if i % 4 == 0 else None,
        }
        for i in range(20)
    ]
    context = {"title": "Harbour at dusk", "board": "Photography", "posts": posts}
    return {**context, "page": page, "pages": 12}


def render(page: int) -> str:
    """Page ``page`` of the thread, as HTML."""
    return THREAD_PAGE.render(thread(page))
