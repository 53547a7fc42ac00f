"""flowyard: Kubeflow without the cluster."""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy so that `import flowyard` stays cheap inside workload processes.
    if name == "Client":
        from flowyard.client import Client

        return Client
    if name == "report_metrics":
        from flowyard.tuning.push import report_metrics

        return report_metrics
    if name == "tune":
        from flowyard.tuning.api import tune

        return tune
    if name == "search":
        from flowyard.tuning import search

        return search
    raise AttributeError(name)
