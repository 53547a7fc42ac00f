"""The ``flowyard`` command, with kubectl habits (DESIGN §5).

Exit codes: 0 success, 1 failure (an error from the server, a timeout, a failed wait), 2 usage.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console

from flowyard import __version__
from flowyard.cli import manifests, pipelines, printing
from flowyard.client import Client
from flowyard.errors import BadRequestError, FlowyardError, NotFoundError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="flowyard: Kubeflow without the cluster.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])

Namespace = Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace.")]


def handles_errors(fn: F) -> F:
    """Print flowyard errors as kubectl does and exit 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FlowyardError as exc:
            err.print(
                f"Error from server ({exc.reason}): {exc.message}", markup=False, highlight=False
            )
            raise typer.Exit(1) from None
        except TimeoutError as exc:
            err.print(f"error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _split_ref(kind: str, name: str | None) -> tuple[str, str | None]:
    """``job/pi`` or ``job pi`` -> (``job``, ``pi``)."""
    if "/" in kind and name is None:
        kind, _, name = kind.partition("/")
    return kind, name


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8731,
) -> None:
    """Start the control plane (API server and controllers) in the foreground."""
    from flowyard.api.platform import serve  # the server package loads only for `up`

    try:
        serve(host, port)
    except FlowyardError as exc:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(1) from None


@app.command()
@handles_errors
def apply(
    filename: Annotated[
        list[str], typer.Option("--filename", "-f", help="File, directory or - for stdin.")
    ],
    namespace: Namespace = None,
) -> None:
    """Create or update resources from YAML/JSON manifests (multi-document)."""
    failed = False
    objects = manifests.load_manifests(filename)
    if not objects:
        err.print("error: no objects passed to apply")
        raise typer.Exit(1)
    with Client() as client:
        for where, obj in objects:
            if namespace:
                md = obj.setdefault("metadata", {})
                if md.setdefault("namespace", namespace) != namespace:
                    raise BadRequestError(
                        f'{where}: the namespace from the provided object "{md["namespace"]}" '
                        f'does not match the namespace "{namespace}"; drop -n or fix the manifest'
                    )
            try:
                result, action = client.apply(obj)
            except FlowyardError as exc:
                failed = True
                err.print(
                    f"Error from server ({exc.reason}) applying {where}: {exc.message}",
                    markup=False,
                    highlight=False,
                )
                continue
            info = client.kind_of(result)
            qualified = f"{info.singular}.{info.group}" if info.group else info.singular
            out.print(f"{qualified}/{result['metadata']['name']} {action}", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command()
@handles_errors
def get(
    kind: str,
    name: Annotated[str | None, typer.Argument()] = None,
    namespace: Namespace = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A")] = False,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="wide, yaml, json or name.")
    ] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-l")] = None,
) -> None:
    """List resources, or show one."""
    kind, name = _split_ref(kind, name)
    with Client() as client:
        info = client.kind(kind)
        if name:
            items = [client.get(info, name, namespace)]
        else:
            items = client.list(
                info, namespace, all_namespaces=all_namespaces, label_selector=selector
            )
        if output in ("yaml", "json"):
            payload: Any = (
                items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}
            )
            text = (
                printing.to_yaml(payload)
                if output == "yaml"
                else orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode()
            )
            out.print(text, markup=False, highlight=False)
        elif output == "name":
            for obj in items:
                out.print(f"{info.singular}/{obj['metadata']['name']}", highlight=False)
        elif output not in (None, "wide"):
            raise typer.BadParameter("use -o wide, yaml, json or name", param_hint="--output")
        elif not items:
            where = "any namespace" if all_namespaces else f"{namespace or 'default'} namespace"
            err.print(f"No resources found in {where}.")
        else:
            out.print(
                printing.table(info, items, wide=output == "wide", all_namespaces=all_namespaces)
            )


@app.command()
@handles_errors
def describe(
    kind: str, name: Annotated[str | None, typer.Argument()] = None, namespace: Namespace = None
) -> None:
    """Show a resource in detail: spec, status, conditions and events."""
    kind, name = _split_ref(kind, name)
    with Client() as client:
        info = client.kind(kind)
        objs = [client.get(info, name, namespace)] if name else client.list(info, namespace)
        for index, obj in enumerate(objs):
            if index:
                out.print()
            uid = obj["metadata"].get("uid", "")
            events = client.list(
                "events",
                obj["metadata"].get("namespace") or "default",
                field_selector=f"involvedObject.uid={uid}",
            )
            if obj.get("kind") in ("Run", "Workflow"):
                pipelines.describe(out, obj, events)
            else:
                printing.describe(out, obj, events)


@app.command()
@handles_errors
def delete(
    kind: Annotated[str | None, typer.Argument()] = None,
    names: Annotated[list[str] | None, typer.Argument()] = None,
    namespace: Namespace = None,
    filename: Annotated[list[str] | None, typer.Option("--filename", "-f")] = None,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found")] = False,
) -> None:
    """Delete resources by kind and name, KIND/NAME, or from manifests."""
    targets: list[tuple[str, str, str | None]] = []
    with Client() as client:
        for _, obj in manifests.load_manifests(filename or []):
            info = client.kind_of(obj)
            md = obj.get("metadata") or {}
            targets.append(
                (
                    info.plural + "." + info.group if info.group else info.plural,
                    md.get("name", ""),
                    md.get("namespace") or namespace,
                )
            )
        if kind:
            refs = [kind, *(names or [])] if "/" in kind else [f"{kind}/{n}" for n in names or []]
            if not refs:
                raise typer.BadParameter("name the resources to delete, e.g. job/pi")
            for ref in refs:
                k, _, n = ref.partition("/")
                targets.append((k, n, namespace))
        if not targets:
            raise typer.BadParameter("give KIND NAME, KIND/NAME or -f FILE")
        for k, n, ns in targets:
            info = client.kind(k)
            try:
                client.delete(info, n, ns)
            except NotFoundError:
                if ignore_not_found:
                    continue
                raise
            qualified = f"{info.singular}.{info.group}" if info.group else info.singular
            out.print(f'{qualified} "{n}" deleted', highlight=False)


@app.command()
@handles_errors
def logs(
    ref: Annotated[str, typer.Argument(help="KIND/NAME, e.g. job/pi.")],
    namespace: Namespace = None,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    container: Annotated[str | None, typer.Option("--container", "-c")] = None,
    tail: Annotated[int | None, typer.Option("--tail")] = None,
) -> None:
    """Print the logs of a resource's processes."""
    kind, _, name = ref.partition("/")
    if not name:
        raise typer.BadParameter("use KIND/NAME, e.g. job/pi", param_hint="REF")
    with Client() as client:
        for chunk in client.logs(
            kind, name, namespace, follow=follow, container=container, tail_lines=tail
        ):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not text.strip() or not match:
        raise typer.BadParameter(
            f'"{text}" is not a duration such as 30s, 5m or 1h', param_hint="--timeout"
        )
    h, m, s = match.groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


@app.command()
@handles_errors
def wait(
    ref: Annotated[str, typer.Argument(help="KIND/NAME, e.g. job/pi.")],
    for_: Annotated[str, typer.Option("--for", help="condition=NAME[=value] or delete.")],
    namespace: Namespace = None,
    timeout: Annotated[str, typer.Option(help="e.g. 30s, 5m.")] = "30s",
) -> None:
    """Wait until a condition holds (or the resource is deleted)."""
    kind, _, name = ref.partition("/")
    if not name:
        raise typer.BadParameter("use KIND/NAME, e.g. job/pi", param_hint="REF")
    seconds = parse_duration(timeout)
    with Client() as client:
        if for_ == "delete":
            _wait_deleted(client, kind, name, namespace, seconds)
            out.print(f"{kind}/{name} condition met", highlight=False)
            return
        if not for_.startswith("condition="):
            raise typer.BadParameter("use --for=condition=NAME or --for=delete", param_hint="--for")
        cond, _, value = for_.removeprefix("condition=").partition("=")
        client.wait_for_condition(
            kind, name, cond, namespace=namespace, timeout=seconds, status=value or "True"
        )
        out.print(f"{client.kind(kind).singular}/{name} condition met", highlight=False)


def _wait_deleted(
    client: Client, kind: str, name: str, namespace: str | None, seconds: float
) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client.get(kind, name, namespace)
        except NotFoundError:
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {kind}/{name} to be deleted")


app.command("run")(handles_errors(pipelines.run))


@app.command()
def version() -> None:
    """Print the client version (and the server's, when it is running)."""
    out.print(f"Client Version: v{__version__}", highlight=False)
    try:
        with Client() as client:
            server = client.request("GET", "/version").json()
        out.print(f"Server Version: {server.get('gitVersion')}", highlight=False)
    except FlowyardError as exc:
        err.print(f"Server: {exc.message}", markup=False, highlight=False)


if __name__ == "__main__":
    app()
