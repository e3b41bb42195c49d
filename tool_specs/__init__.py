"""The model tool specs, shipped inside the wheel as package data of runcomfy_mcp."""
