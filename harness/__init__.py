"""cte-conformance: conformance and policy harness for communication as a Teams user."""

__version__ = "0.1.0"
