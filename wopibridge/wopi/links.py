"""Editor URLs carrying a ``WOPISrc``: the one rule for appending it, used wherever a host URL
is built (openinapp's answer, PutRelativeFile's ``HostEditUrl``), and the one rule for URLs
taken from outside.

Every URL a caller or an editor hands wopibridge (openinapp's ``appurl``, ``appviewurl`` and
``folderurl``, ``/wopi/open``'s ``close_url``, discovery's ``urlsrc`` templates) ends up in a
browser: as a link, a form action or the editor's ``CloseUrl``. Only ``http`` and ``https``
are taken, so a ``javascript:`` or ``data:`` URL can never run in the user's page.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

WEB_SCHEMES = ("http", "https")


def is_web_url(url: str) -> bool:
    """An absolute ``http(s)://host/...`` URL, nothing else (no scheme-relative ``//host``)."""
    if not url or any(ch in url for ch in "\x00\r\n\t"):
        return False
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.netloc)


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
