"""The bundle's entry point: the package's own console script (`runcomfy-mcp`), as `uvx` starts it."""

from runcomfy_mcp.cli import main

if __name__ == "__main__":
    main()
