"""``python -m safemedia``."""

import sys

from safemedia.cli import main

sys.exit(main())
