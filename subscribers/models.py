"""People and their digests (filled in by the subscriptions work)."""
