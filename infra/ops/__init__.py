"""Operations: migrate, preflight checks, verify, reconcile, dead letters (the `shop` command)."""
