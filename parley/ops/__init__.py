"""Operator tools behind ``parley replay`` and ``parley dlq``.

The logic takes its source (a topic range), its sink (a producer) and its ledger (what was already
done, in MongoDB) as arguments, so the tests drive it without Kafka; ``kafka_io`` and the Mongo
ledgers are the real adapters the CLI wires in.
"""

from parley.ops.common import OpsError

__all__ = ["OpsError"]
