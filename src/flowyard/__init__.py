"""flowyard: Kubeflow without the cluster."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy so that `import flowyard` stays cheap inside workload processes.
    if name == "Client":
        from flowyard.client import Client

        return Client
    raise AttributeError(name)
