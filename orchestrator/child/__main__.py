"""``python -m orchestrator.child``: arm the parent-death signal, then run the child.

The order is the point. ``die_with_parent_from_env`` runs before the warm-up imports (~100+ ms):
a parent that dies during that window must take this process with it, and a parent that died
before it is detected by the pid check and ends this process at once with ``PARENT_LOST``.
Only ``orchestrator.process.pdeathsig`` (ctypes, os, signal) is imported before it.
"""

import sys

from orchestrator.process.pdeathsig import die_with_parent_or_exit

die_with_parent_or_exit("orchestrator.child")

from orchestrator.child.main import main  # noqa: E402 - after prctl, on purpose

sys.exit(main())
