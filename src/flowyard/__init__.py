"""flowyard: Kubeflow without the cluster."""

__version__ = "0.1.0"
