"""XRootD storage (EOS, dCache, ``xrootd``): :mod:`.config` (the table), :mod:`.client` (the
protocol, on the optional ``xrootd`` bindings), :mod:`.transfer` (streamed bodies),
:mod:`.guard` (the server-side mutex), :mod:`.identity` (which file an id names),
:mod:`.locks` (WOPI locks on the files),
:mod:`.storage` (the Storage contract mapped onto it).

Nothing here imports the bindings until a storage is built, so a configuration without an
XRootD storage never needs them, and one that names the type without them says how to
install them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wopibridge.storage.xrootd.config import XrootdConfig

if TYPE_CHECKING:
    from wopibridge.storage.idmap import IdMap
    from wopibridge.storage.xrootd.storage import XrootdStorage


def build(
    name: str, table: Mapping[str, Any], ids: IdMap | None = None, *, site: str = ""
) -> XrootdStorage:
    """The storage of one ``[storages.<name>]`` table; ``ValueError`` names the bad key, or
    says how to install the client when it is missing."""
    config = XrootdConfig.from_table(name, table)
    from wopibridge.storage.xrootd import client

    try:
        client.configure_client(config)
    except ValueError as exc:
        raise ValueError(f"storages.{name}.type: {exc}") from None
    from wopibridge.storage.xrootd.storage import XrootdStorage

    return XrootdStorage(name, config, ids, site=site)


__all__ = ["XrootdConfig", "build"]
