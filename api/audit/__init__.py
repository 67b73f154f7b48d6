"""The audit log read back: every row for admins, an account's own for its customer key."""
