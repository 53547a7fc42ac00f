"""The bad-input corpus: every manifest in ``corpus/`` with what the server and the CLI must say.

Text manifests carry their expectations in header comments (``# expect-status: 422``,
``# expect-message: ...``, optional ``# expect-cli-message:``, ``# path:``, ``# cli-args:``);
files that cannot hold a comment (JSON, binary) are described in ``corpus/expectations.yaml``.
Documents too large to keep in the repository are generated here (:func:`generated_cases`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CORPUS = Path(__file__).parent / "corpus"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
_HEADER = re.compile(
    rb"^#\s*(expect-status|expect-message|expect-cli-message|path|cli-args):\s*(.*)$"
)


@dataclass(frozen=True)
class Case:
    """One bad input: POSTed to ``path`` it must get ``status`` and a Status message containing
    ``message``; applied with the CLI it must exit 1 with ``cli_message`` on stderr."""

    name: str
    file: Path
    status: int
    message: str
    cli_message: str
    path: str = JOBS
    cli_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def content_type(self) -> str:
        return "application/json" if self.file.suffix == ".json" else "application/yaml"


def _from_header(file: Path) -> Case | None:
    found: dict[str, str] = {}
    for line in file.read_bytes().splitlines()[:10]:
        match = _HEADER.match(line)
        if match:
            found[match.group(1).decode()] = match.group(2).decode().strip()
    if "expect-status" not in found:
        return None
    message = found["expect-message"].replace('\\"', '"')
    return Case(
        name=file.name,
        file=file,
        status=int(found["expect-status"]),
        message=message,
        cli_message=found.get("expect-cli-message", message),
        path=found.get("path", JOBS),
        cli_args=tuple(found.get("cli-args", "").split()),
    )


def corpus_cases() -> list[Case]:
    """Every file in ``corpus/`` (except the expectations table), each with its expectations;
    a file without any is an error, so a new manifest cannot be silently skipped."""
    table = yaml.safe_load((CORPUS / "expectations.yaml").read_text())
    cases = []
    for file in sorted(CORPUS.iterdir()):
        if file.name == "expectations.yaml":
            continue
        if file.name in table:
            row = table[file.name]
            cases.append(
                Case(
                    name=file.name,
                    file=file,
                    status=int(row["status"]),
                    message=row["message"],
                    cli_message=row.get("cli-message", row["message"]),
                    path=row.get("path", JOBS),
                )
            )
            continue
        case = _from_header(file)
        if case is None:
            raise AssertionError(f"{file.name} states no expectations (header or table)")
        cases.append(case)
    return cases


def generated_cases(directory: Path) -> list[Case]:
    """Inputs too big for the repository, written into ``directory``."""
    big = directory / "ten-megabytes.yaml"
    blob = "x" * (10 * 1024 * 1024)
    big.write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: huge\n  annotations:\n"
        f"    blob: {blob}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n"
        '      containers: [{name: main, image: busybox, command: ["true"]}]\n'
    )
    return [Case("ten-megabytes.yaml", big, 413, "request entity too large", "too large")]
