"""bearwatch runtime: capture, batching, ONNX Runtime inference, decisions, review store, web."""

__version__ = "0.1.0"
