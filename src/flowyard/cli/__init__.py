"""The ``flowyard`` command line (imports only the client)."""
