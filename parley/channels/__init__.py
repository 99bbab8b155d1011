"""Messaging-platform channels: verify and parse inbound webhooks, send replies outbound."""
