"""``python -m mailservice``: the same as the ``mailservice`` command."""

import sys

from mailservice.cli import console

sys.exit(console())
