"""`python -m annotate.cli`, the same as the `preflab` console script."""

import sys

from annotate.cli import main

sys.exit(main())
