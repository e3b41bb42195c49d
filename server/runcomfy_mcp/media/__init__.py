"""Media from outside: image inputs probed or inlined, output files downloaded, over guarded HTTP."""
