"""Moved to ``parley.config.store`` (the loader) and ``parley.config.models`` (the types).

Kept only so that modules being changed in parallel (``parley.runtime``, some web tests) still
import; new code imports from ``parley.config``. Remove once nothing imports this.
"""

from parley.config.models import ApplicationConfig, ChatbotConfig
from parley.config.store import ConfigStore, application_key, chatbot_config, chatbot_key

__all__ = ["ApplicationConfig", "ChatbotConfig", "ConfigStore", "application_key", "chatbot_config", "chatbot_key"]
