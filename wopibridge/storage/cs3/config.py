"""The ``[storages.<name>]`` table of a CS3 storage, and the file ids built from CS3 resource
ids (URL-safe for wopibridge, ``storage$space!opaque`` for Reva)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cs3.storage.provider.v1beta1.resources_pb2 as spr

from wopibridge.errors import NotFound

APP_NAME = "wopibridge"

META_PREFIX = "wopibridge."

_ID_SEP = "\x1f"


def encode_resource_id(rid: spr.ResourceId) -> str:
    """A URL-safe backend id from a CS3 resource id (storage, space and opaque ids)."""
    raw = _ID_SEP.join((rid.storage_id, rid.space_id, rid.opaque_id)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_resource_id(file_id: str) -> spr.ResourceId:
    try:
        raw = base64.urlsafe_b64decode((file_id + "=" * (-len(file_id) % 4)).encode("ascii"))
        storage_id, space_id, opaque_id = raw.decode().split(_ID_SEP)
    except (binascii.Error, UnicodeError, ValueError):
        raise NotFound("File not found") from None
    if not opaque_id:
        raise NotFound("File not found")
    return spr.ResourceId(storage_id=storage_id, space_id=space_id, opaque_id=opaque_id)


def parse_reva_id(ref: str) -> spr.ResourceId | None:
    """Reva's string form ``storage_id$space_id!opaque_id`` (or ``storage_id!opaque_id``)."""
    head, sep, opaque_id = ref.partition("!")
    if not sep or not opaque_id or "/" in head:
        return None
    storage_id, _, space_id = head.partition("$")
    return spr.ResourceId(storage_id=storage_id, space_id=space_id, opaque_id=opaque_id)


def format_reva_id(rid: spr.ResourceId) -> str:
    return f"{rid.storage_id}${rid.space_id}!{rid.opaque_id}"


@dataclass(frozen=True, slots=True)
class Cs3Config:
    """One ``[storages.<name>]`` table of ``type = "cs3"``.

    ``gateway``: ``host:port`` of the gateway's gRPC endpoint; ``tls``: use a TLS channel;
    ``root``: the CS3 path that relative references start from; ``token``: a service token
    used when a request carries no user token (optional); ``site``: prefix of every lock key.
    """

    gateway: str
    tls: bool = False
    root: str = "/"
    token: str = ""
    site: str = ""
    timeout: float = 30.0
    insecure_data: bool = False
    #: list, download and restore the versions the gateway keeps
    versions: bool = True

    @classmethod
    def from_table(cls, name: str, table: Mapping[str, Any]) -> Cs3Config:
        known = set(cls.__dataclass_fields__) | {"type"}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"storages.{name}.{sorted(unknown)[0]}: unknown key")
        gateway = str(table.get("gateway", ""))
        host, _, port = gateway.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"storages.{name}.gateway: must be host:port")
        root = str(table.get("root", "/"))
        if not root.startswith("/"):
            raise ValueError(f"storages.{name}.root: must be an absolute CS3 path")
        try:
            timeout = float(table.get("timeout", 30.0))
        except (TypeError, ValueError):
            raise ValueError(f"storages.{name}.timeout: must be a number") from None

        def flag(key: str, default: bool = False) -> bool:
            value = table.get(key, default)
            return value.lower() in ("1", "true", "yes") if isinstance(value, str) else bool(value)

        return cls(
            gateway=gateway,
            tls=flag("tls"),
            root=root.rstrip("/") or "/",
            token=str(table.get("token", "")),
            site=str(table.get("site", "")) or f"cs3:{gateway}",
            timeout=timeout,
            insecure_data=flag("insecure_data"),
            versions=flag("versions", True),
        )
