"""Receiving Graph change notifications on a webhook and pushing them to clients."""
