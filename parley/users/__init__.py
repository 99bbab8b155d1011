"""Operator accounts (the User Service): users, roles and application scopes, sessions, personal
API tokens, one-time sign-in links, login throttling and the audit log. See docs/admin-api.md."""
