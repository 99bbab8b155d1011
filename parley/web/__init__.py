"""The aiohttp layer: websocket gateway, webhook ingress, health, and the chat page."""
