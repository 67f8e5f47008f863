"""Process exit statuses shared by every command (DESIGN §4)."""

OK = 0
JOB_FAILED = 1
BAD_USAGE = 2
