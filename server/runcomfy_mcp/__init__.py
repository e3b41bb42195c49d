"""runcomfy-mcp: an MCP server for RunComfy's hosted models: the ByteDance seeds and the whole catalog."""

import sys

# The one place the version lives (pyproject reads it from here); no metadata lookup at start-up.
__version__ = "0.1.0"

# httpx imports its command-line client whenever `rich` and `click` happen to be installed (they are not its
# requirements, nor ours): 3 MB of the server's memory for a tool it never runs. A None entry is Python's way of
# saying a module is absent; httpx then goes without its command line.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]  # None: absent
