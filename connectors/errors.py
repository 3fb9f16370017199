"""Errors raised by the connectors.

MalformedPayload      the body is not JSON, or not any shape the vendor sends
"""


class MalformedPayload(ValueError):
    """The delivery cannot be parsed: keep the raw bytes, do not retry the job."""
