"""The kinds flowyard serves, registered in :data:`~flowyard.resources.registry.REGISTRY`.

Names, short names and columns follow upstream (kubectl for core kinds, each CRD's
``names`` and ``additionalPrinterColumns`` for Kubeflow kinds).
"""

from __future__ import annotations

from flowyard.resources.registry import REGISTRY, KindInfo, PrinterColumn

AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")

EVENT = REGISTRY.register(
    KindInfo(
        group="",
        version="v1",
        kind="Event",
        plural="events",
        short_names=("ev",),
        schema_file="core.v1.Event.yaml",
        columns=(
            PrinterColumn("Last Seen", ".lastTimestamp", "date"),
            PrinterColumn("Type", ".type"),
            PrinterColumn("Reason", ".reason"),
            PrinterColumn("Object", ".involvedObject.name"),
            PrinterColumn("Message", ".message"),
        ),
    )
)

NAMESPACE = REGISTRY.register(
    KindInfo(
        group="",
        version="v1",
        kind="Namespace",
        plural="namespaces",
        short_names=("ns",),
        namespaced=False,
        schema_file="core.v1.Namespace.yaml",
        columns=(PrinterColumn("Status", ".status.phase"), AGE),
    )
)

JOB = REGISTRY.register(
    KindInfo(
        group="batch",
        version="v1",
        kind="Job",
        plural="jobs",
        schema_file="batch.v1.Job.yaml",
        columns=(
            PrinterColumn("Status", '.status.conditions[?(@.status=="True")].type'),
            PrinterColumn("Completions", ".status.succeeded"),
            PrinterColumn("Active", ".status.active", "integer"),
            PrinterColumn("Failed", ".status.failed", "integer", priority=1),
            PrinterColumn("Duration", ".status.startTime", "duration"),
            AGE,
            PrinterColumn("Image", ".spec.template.spec.containers[*].image", priority=1),
        ),
    )
)

CONFIGMAP = REGISTRY.register(
    KindInfo(
        group="",
        version="v1",
        kind="ConfigMap",
        plural="configmaps",
        short_names=("cm",),
        schema_file="core.v1.ConfigMap.yaml",
        columns=(AGE,),
    )
)
