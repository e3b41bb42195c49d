"""An in-process simulator of the RunComfy Model API, for trying the server without an account and for tests."""
