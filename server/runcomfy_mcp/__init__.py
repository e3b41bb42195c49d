"""runcomfy-mcp: an MCP server for RunComfy's hosted models: the ByteDance seeds and the whole catalog."""

# The one place the version lives (pyproject reads it from here); no metadata lookup at start-up.
__version__ = "0.1.0"
