"""Editor URLs carrying a ``WOPISrc``: the one rule for appending it, used wherever a host URL
is built (openinapp's answer, PutRelativeFile's ``HostEditUrl``)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit


def with_wopisrc(app_url: str, wopi_src: str) -> str:
    """Append ``WOPISrc`` to an editor URL, whatever it already ends with."""
    separator = "" if app_url.endswith(("?", "&")) else ("&" if "?" in app_url else "?")
    return f"{app_url}{separator}WOPISrc={quote(wopi_src, safe='')}"


def without_wopisrc(editor_url: str, wopi_src: str) -> str:
    """The editor URL with this file's ``WOPISrc`` taken out (whatever the parameter's case), so
    :func:`with_wopisrc` can point it at another file."""
    parts = urlsplit(editor_url)
    encoded = quote(wopi_src, safe="")
    kept = [p for p in parts.query.split("&") if p and p.partition("=")[2] != encoded]
    return urlunsplit(parts._replace(query="&".join(kept))) + ("&" if kept else "?")
