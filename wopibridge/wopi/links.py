"""Editor URLs carrying a ``WOPISrc``: the one rule for appending it, used wherever a host URL
is built (openinapp's answer, PutRelativeFile's ``HostEditUrl``)."""

from __future__ import annotations

from urllib.parse import quote


def with_wopisrc(app_url: str, wopi_src: str) -> str:
    """Append ``WOPISrc`` to an editor URL, whatever it already ends with."""
    separator = "" if app_url.endswith(("?", "&")) else ("&" if "?" in app_url else "?")
    return f"{app_url}{separator}WOPISrc={quote(wopi_src, safe='')}"
