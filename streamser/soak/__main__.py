"""``python -m streamser.soak``."""

import sys

from streamser.soak.runner import main

sys.exit(main())
