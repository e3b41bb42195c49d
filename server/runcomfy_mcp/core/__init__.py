"""The core: specs, argument checks and the job service. No MCP here, and no HTTP details."""
