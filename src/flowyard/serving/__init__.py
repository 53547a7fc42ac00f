"""Model serving (KServe-compatible): the model server process, runtimes, storage, batcher.

Custom models subclass :class:`Model` (KServe's method names); V2 payloads use
:class:`InferRequest` / :class:`InferResponse` with KServe's attribute names.
"""

from flowyard.serving.infer_types import InferInput, InferOutput, InferRequest, InferResponse
from flowyard.serving.model import ArrayModel, Model

__all__ = ["ArrayModel", "InferInput", "InferOutput", "InferRequest", "InferResponse", "Model"]
