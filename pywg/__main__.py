"""`python -m pywg`: the same as the `pywg` command."""

import sys

from pywg._tools.cli import main

sys.exit(main())
