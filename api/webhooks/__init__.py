"""Webhooks: signed pushes of an account's change feed to its own URLs."""
