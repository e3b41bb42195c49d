"""runcomfy-mcp: an MCP server for RunComfy's hosted ByteDance video models."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runcomfy-mcp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
