"""The logic the agents call: plain async code, driven without Kafka in unit tests."""
