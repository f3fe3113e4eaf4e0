"""The apps the adversarial suites run under real servers (uvicorn, gunicorn)."""
