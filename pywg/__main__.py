"""`python -m pywg`: the same as the `pywg` command."""

import sys

from pywg.cli import main

sys.exit(main())
