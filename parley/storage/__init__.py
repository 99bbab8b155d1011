"""Ports to outside systems (documents, cache, bus) and their adapters."""
