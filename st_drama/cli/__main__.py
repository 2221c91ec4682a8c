"""``python -m st_drama.cli``: the ``st-drama`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
