"""The kind registry: which ``apiVersion``/``kind`` pairs exist, their REST names, schemas,
printer columns and admission hooks.

The registry holds data only. Components (the Job controller, Katib, KServe, ...) attach their
defaulting and semantic validation with :meth:`KindRegistry.add_defaulter` and
:meth:`KindRegistry.add_validator` when they are loaded, so ``resources`` depends on nothing.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from flowyard.errors import FieldCause, NotFoundError
from flowyard.resources.meta import Resource

Defaulter = Callable[[Resource], None]
"""Fills in defaults on a new or updated object, in place."""

Validator = Callable[[Resource, Resource | None], list[FieldCause]]
"""Returns the semantic problems of ``new`` (``old`` is the stored object on update, else None)."""

StoreValidator = Callable[[Resource, Resource | None, Any], list[FieldCause]]
"""Like :data:`Validator`, for checks that must read other objects; the third argument is the
store (a ``flowyard.store.base.BaseStore``). The API runs these after admission, e.g. Katib's
"the trial template's ConfigMap exists"."""


@dataclass(frozen=True)
class PrinterColumn:
    """A ``get`` column, as a CRD's ``additionalPrinterColumns`` entry (``priority`` 1 = wide)."""

    name: str
    json_path: str
    type: str = "string"
    priority: int = 0


@dataclass
class KindInfo:
    """Everything flowyard knows about one kind."""

    group: str
    version: str
    kind: str
    plural: str
    short_names: tuple[str, ...] = ()
    namespaced: bool = True
    schema_file: str | None = None
    columns: tuple[PrinterColumn, ...] = ()
    defaulters: list[Defaulter] = field(default_factory=list)
    validators: list[Validator] = field(default_factory=list)
    store_validators: list[StoreValidator] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> str:
        """Storage key, stable across versions: ``Kind.group`` (``Job.batch``, ``Event``)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def collection_path(self, namespace: str | None) -> str:
        """The REST path of this kind's collection (all namespaces when ``namespace`` is None)."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{root}/namespaces/{namespace}/{self.plural}"
        return f"{root}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


class KindRegistry:
    """All registered kinds, looked up by apiVersion+kind, by REST path or by a kubectl name."""

    def __init__(self) -> None:
        self._by_gvk: dict[tuple[str, str], KindInfo] = {}
        self._by_path: dict[tuple[str, str, str], KindInfo] = {}
        self._lock = threading.Lock()

    def register(self, info: KindInfo) -> KindInfo:
        self._by_gvk[(info.api_version, info.kind)] = info
        self._by_path[(info.group, info.version, info.plural)] = info
        return info

    def ensure(self, info: KindInfo) -> KindInfo:
        """Register ``info`` unless its kind is already there; return the registered entry.
        Idempotent and thread safe. Each registry gets its own copy (hooks are never shared)."""
        with self._lock:
            existing = self._by_gvk.get((info.api_version, info.kind))
            if existing is not None:
                return existing
            own = (
                info
                if self is REGISTRY
                else replace(info, defaulters=[], validators=[], store_validators=[])
            )
            return self.register(own)

    def __iter__(self) -> Iterator[KindInfo]:
        return iter(sorted(self._by_gvk.values(), key=lambda k: (k.group, k.kind)))

    def known_kinds(self) -> list[str]:
        return [f"{k.api_version}/{k.kind}" for k in self]

    def get(self, api_version: object, kind: object) -> KindInfo:
        """The kind for an object's ``apiVersion``/``kind``; NotFoundError lists what exists."""
        info = self._by_gvk.get((str(api_version), str(kind)))
        if info is not None:
            return info
        same_kind = [k for k in self if k.kind == kind]
        if same_kind:
            versions = ", ".join(k.api_version for k in same_kind)
            raise NotFoundError(
                f'no matches for kind "{kind}" in version "{api_version}": '
                f"{kind} is served as apiVersion {versions}"
            )
        raise NotFoundError(
            f'no matches for kind "{kind}" in version "{api_version}"; known kinds: '
            + ", ".join(self.known_kinds())
        )

    def by_path(self, group: str, version: str, plural: str) -> KindInfo:
        info = self._by_path.get((group, version, plural))
        if info is None:
            gv = f"{group}/{version}" if group else version
            raise NotFoundError(
                f'the server could not find the requested resource "{plural}" in "{gv}"'
            )
        return info

    def resolve(self, name: str) -> KindInfo:
        """A kind from what a user types: ``jobs``, ``job``, ``Job``, a short name, or
        ``plural.group`` (``jobs.batch``) to pick one group."""
        wanted = name.strip()
        lowered = wanted.lower()
        plain, _, group = lowered.partition(".")
        matches = [
            k
            for k in self
            if plain in (k.plural, k.singular, *k.short_names)
            and (not group or k.group == group or k.group.startswith(group + "."))
        ]
        if not matches:
            names = sorted({n for k in self for n in (k.plural, k.singular, *k.short_names)})
            close = difflib.get_close_matches(lowered, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NotFoundError(
                f'the server doesn\'t have a resource type "{name}"{hint} '
                f"(known: {', '.join(sorted({k.plural for k in self}))})"
            )
        if len(matches) > 1:
            options = ", ".join(f"{k.plural}.{k.group}" for k in matches)
            raise NotFoundError(f'"{name}" is ambiguous; use one of: {options}')
        return matches[0]

    def add_defaulter(self, api_version: str, kind: str, fn: Defaulter) -> None:
        info = self.get(api_version, kind)
        if fn not in info.defaulters:
            info.defaulters.append(fn)

    def add_validator(self, api_version: str, kind: str, fn: Validator) -> None:
        info = self.get(api_version, kind)
        if fn not in info.validators:
            info.validators.append(fn)

    def add_store_validator(self, api_version: str, kind: str, fn: StoreValidator) -> None:
        info = self.get(api_version, kind)
        if fn not in info.store_validators:
            info.store_validators.append(fn)


REGISTRY = KindRegistry()
"""The process-wide registry; :mod:`flowyard.resources.kinds` fills it with the built-in kinds."""
