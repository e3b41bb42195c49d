"""The MCP layer: server wiring, the tool table, resources and the text each outcome reads as."""
