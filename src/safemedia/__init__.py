"""safemedia: keep known abuse imagery off a Python web app's pages.

A drop-in WSGI/ASGI middleware that fingerprints every image response (PDQ, pHash, exact digests),
checks it against the operator's hash lists, and blocks matches with HTTP 451.
"""

from safemedia.config import Config, ConfigError
from safemedia.events import Action, Detection, DetectionRecorder
from safemedia.verdict import Match, Reason, Verdict, VerdictKind

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Config",
    "ConfigError",
    "Detection",
    "DetectionRecorder",
    "Match",
    "Reason",
    "Verdict",
    "VerdictKind",
    "__version__",
]
