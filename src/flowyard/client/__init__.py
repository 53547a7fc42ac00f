"""The flowyard Python client (imports only ``resources`` and ``errors``)."""

from flowyard.client.client import Client

__all__ = ["Client"]
