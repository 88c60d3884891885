"""Use cases on a session. Services flush, never commit: the caller owns the transaction."""
