"""``python -m anograph.cli``: the ``anograph`` command."""

import sys

from anograph.cli import main

sys.exit(main())
