"""The RunComfy API over HTTP: the client, its retries, and keeping tokens out of what leaves."""
