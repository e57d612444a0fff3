"""``python -m control``: the ``rialto`` command."""

import sys

from control.cli import main

sys.exit(main())
