"""Plain types and rules every layer shares: no I/O, nothing of the project imported but `errors`."""
