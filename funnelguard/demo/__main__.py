"""``python -m funnelguard.demo`` (what ``make demo`` runs)."""

import sys

from funnelguard.demo.run import main

sys.exit(main())
