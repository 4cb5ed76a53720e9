"""``python -m psp`` is the ``psp`` command."""

import sys

from psp.cli import main

sys.exit(main())
