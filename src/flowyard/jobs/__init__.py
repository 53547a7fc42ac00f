"""``batch/v1 Job``: the first real kind, run as host processes through the executor.

The container ``image`` is recorded but not pulled: ``command`` + ``args`` run on this host
(see docs/jobs.md). :func:`register` attaches defaulting and validation to the kind.
"""

from flowyard.jobs.admission import register
from flowyard.jobs.controller import JobController

__all__ = ["JobController", "register"]
