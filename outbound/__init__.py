"""Outbound calls: the SSRF guard every outbound URL goes through, and the alert senders."""
