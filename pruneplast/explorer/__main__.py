"""``python -m pruneplast.explorer``: the same as ``pruneplast explore``."""

import sys

from .app import main

sys.exit(main())
