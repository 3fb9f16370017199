"""Vendor webhook connectors: authenticate, dedupe and map deliveries onto items.

Pure: no FastAPI, asyncpg, RQ or database imports, so the API and the worker can both use it.
"""

from connectors.errors import MalformedPayload
from connectors.registry import VENDORS, dedupe_key, parse, verify
from connectors.results import Parsed, Verified

__all__ = ["VENDORS", "MalformedPayload", "Parsed", "Verified", "dedupe_key", "parse", "verify"]
