#!/usr/bin/env python3
"""Extract ``openAPIV3Schema`` documents from upstream CRD YAML files into the package.

Each (CRD file, version) pair becomes
``src/flowyard/resources/schemas/<group>.<version>.<Kind>.json.gz`` (gzipped JSON, written
byte-for-byte reproducibly: sorted keys, gzip mtime 0), which
:func:`flowyard.resources.schema.load_schema` reads. The output is data only.

Usage::

    python scripts/sync_schemas.py --reference DIR [--crd FILE:VERSION ...] [--set training]

``--set NAME`` adds a named list of CRDs relative to ``--reference`` (the upstream reference data
directory: ``training-operator-v1/``, ``trainer-v2/``, ...). ``--crd`` adds any other CRD file, so
other components can add their kinds without editing this script; extend :data:`SETS` to make a
list reusable.

Provenance of the training schemas:

* ``PyTorchJob``, ``TFJob``: ``training-operator-v1/crd/`` of the reference set (kubeflow/trainer
  tag v1.9.4, ``manifests/base/crds/``).
* ``XGBoostJob``, ``MPIJob``: not in the reference set; the same tag and directory of
  kubeflow/trainer (``kubeflow.org_xgboostjobs.yaml``, ``kubeflow.org_mpijobs.yaml``), passed
  with ``--crd``.
* ``TrainJob``, ``ClusterTrainingRuntime``: ``trainer-v2/crd/`` (kubeflow/trainer tag v2.3.0).
* ``TrainingRuntime``: not in the reference set; kubeflow/trainer tag v2.3.0,
  ``manifests/base/crds/trainer.kubeflow.org_trainingruntimes.yaml``, passed with ``--crd``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import yaml

OUT_DIR = Path(__file__).resolve().parent.parent / "src" / "flowyard" / "resources" / "schemas"

SETS: dict[str, list[tuple[str, str]]] = {
    "training": [
        ("training-operator-v1/crd/kubeflow.org_pytorchjobs.yaml", "v1"),
        ("training-operator-v1/crd/kubeflow.org_tfjobs.yaml", "v1"),
        ("trainer-v2/crd/trainer.kubeflow.org_trainjobs.yaml", "v1alpha1"),
        ("trainer-v2/crd/trainer.kubeflow.org_clustertrainingruntimes.yaml", "v1alpha1"),
    ],
}


def extract(crd_path: Path, version: str) -> tuple[str, dict[str, Any]]:
    """The output file name and the ``openAPIV3Schema`` of ``version`` in one CRD file."""
    docs = [d for d in yaml.safe_load_all(crd_path.read_text()) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1:
        raise SystemExit(f"{crd_path}: expected one CustomResourceDefinition, found {len(crds)}")
    spec = crds[0]["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    for entry in spec.get("versions") or []:
        if entry.get("name") == version:
            schema = (entry.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(schema, dict):
                raise SystemExit(f"{crd_path}: version {version} has no openAPIV3Schema")
            return f"{group}.{version}.{kind}.json.gz", schema
    names = ", ".join(str(v.get("name")) for v in spec.get("versions") or [])
    raise SystemExit(f"{crd_path}: no version {version!r} (has: {names})")


def write(name: str, schema: dict[str, Any], out_dir: Path) -> Path:
    """Write reproducibly (same input, same bytes) so regenerating shows no spurious diff."""
    payload = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
    target = out_dir / name
    target.write_bytes(gzip.compress(payload, compresslevel=9, mtime=0))
    return target


def _pairs(args: argparse.Namespace) -> list[tuple[Path, str]]:
    pairs: list[tuple[Path, str]] = []
    for set_name in args.set or []:
        if args.reference is None:
            raise SystemExit("--set needs --reference DIR (the upstream reference data directory)")
        pairs += [(Path(args.reference) / rel, version) for rel, version in SETS[set_name]]
    for item in args.crd or []:
        path, sep, version = item.rpartition(":")
        if not sep or not path or not version:
            raise SystemExit(f"--crd {item!r}: expected FILE:VERSION, e.g. crds/x.yaml:v1")
        pairs.append((Path(path), version))
    if not pairs:
        raise SystemExit("nothing to do: pass --set NAME and/or --crd FILE:VERSION")
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", help="upstream reference data directory")
    parser.add_argument("--set", action="append", choices=sorted(SETS), help="named CRD list")
    parser.add_argument("--crd", action="append", help="FILE:VERSION of one more CRD")
    parser.add_argument("--out", default=str(OUT_DIR), help="output directory")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, version in _pairs(args):
        name, schema = extract(path, version)
        target = write(name, schema, out_dir)
        print(f"{path.name} {version} -> {target.name} ({target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
