"""The Tandem emitter SDK: department systems publish metric events with ``MetricEmitter``.

It depends only on ``contracts``, ``aiokafka`` and the shared producer factory
(no FastAPI, no database), so a department system can embed it as is.
"""

from sdk.emitter.emitter import EmitError, MetricEmitter

__all__ = ["EmitError", "MetricEmitter"]
