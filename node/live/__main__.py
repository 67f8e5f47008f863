"""``python -m node.live CONFIG [--duration SECONDS]`` (see node.live.cli)."""

import sys

from node.live.cli import main

sys.exit(main())
