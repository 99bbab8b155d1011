"""Applications and chatbots: their documents as models, and the cached loader.

- ``parley.config.models``: ``Application`` and ``Chatbot`` (pydantic), the one place their
  fields, defaults, limits and descriptions are written; their validation, JSON Schemas and the
  typed configs a turn reads (``ApplicationConfig``, ``ChatbotConfig``). Foundation layer:
  imports nothing of Parley but the settings.
- ``parley.config.store``: ``ConfigStore``, which reads the documents from the document store
  through a cache. Adapter layer.

This package imports neither, so importing the models never pulls in the store's adapters.
"""
