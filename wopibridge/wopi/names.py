"""File names as WOPI carries them: UTF-7 headers, validation, and collision-free variants.

A name wopibridge creates (new document, Save As, rename) must be one it can serve in every
mode, so it is at most :data:`MAX_EDITOR_NAME_BYTES`: editing an ODF file writes the LibreOffice
lock file ``.~lock.<name>#`` beside it, eight bytes longer, and no file system takes a name
over 255 bytes. The same sentence refuses it everywhere; a suggested name (Save As in the
``X-WOPI-SuggestedTarget`` mode, which WOPI lets the host adjust) is shortened instead, and
so are the ``name (1).ext`` variants that make a taken name free.
"""

from __future__ import annotations

from collections.abc import Iterator

from wopibridge.errors import BadRequest, InvalidFileName
from wopibridge.storage.names import FORBIDDEN as _FORBIDDEN
from wopibridge.storage.names import MAX_NAME_BYTES, check_name


def decode_utf7(value: str, header: str) -> str:
    """Decode a UTF-7 header (``X-WOPI-SuggestedTarget`` and friends); malformed is 400."""
    try:
        decoded = value.encode("ascii").decode("utf-7")
        decoded.encode("utf-8")  # a lone surrogate decodes but names no file
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise BadRequest(f"{header} is not valid UTF-7") from None
    return decoded


#: The longest name (UTF-8 bytes) an editor may give a file: room for ``.~lock.<name>#``.
MAX_EDITOR_NAME_BYTES = MAX_NAME_BYTES - len(".~lock.#")
TOO_LONG = "The file name is too long"


def encode_utf7(name: str) -> str:
    return name.encode("utf-7").decode("ascii")


def is_desktop_lock_name(name: str) -> bool:
    """``.~lock.<name>#`` (LibreOffice) or ``~$<name>`` (Microsoft Office): files that tell
    desktop suites, and wopibridge, that a document is open elsewhere."""
    return (name.startswith(".~lock.") and name.endswith("#")) or name.startswith("~$")


def check_editor_name(name: str) -> str:
    """A name an editor asks for (Save As, rename): valid, and not a desktop lock file, which
    would make another document open read-only for everyone."""
    check_name(name)
    if len(name.encode("utf-8")) > MAX_EDITOR_NAME_BYTES:
        raise InvalidFileName(TOO_LONG)
    if is_desktop_lock_name(name):
        raise InvalidFileName("The file name is reserved for office lock files")
    return name


def sanitize_name(name: str) -> str:
    """Turn a suggested name into a valid one (WOPI says the host adjusts suggestions)."""
    cleaned = _FORBIDDEN.sub("_", name).strip() or "document"
    while is_desktop_lock_name(cleaned):  # the document's own name, not its lock file's
        cleaned = cleaned.removeprefix(".~lock.").removesuffix("#").removeprefix("~$").strip()
    cleaned = cleaned or "document"
    if cleaned in (".", "..") or cleaned.startswith(".~wb-"):
        cleaned = "document" + cleaned.lstrip(".~")
    stem, ext = split_ext(cleaned)
    return fit_name(stem, ext) or fit_name(cleaned, "") or "document"


def split_ext(name: str) -> tuple[str, str]:
    """``"a.b.docx"`` → ``("a.b", ".docx")``; a leading dot is not an extension."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def fit_name(stem: str, suffix: str) -> str:
    """``stem + suffix``, the stem shortened (whole characters) until the name fits
    :data:`MAX_EDITOR_NAME_BYTES`; ``""`` when not even one character of the stem fits."""
    room = MAX_EDITOR_NAME_BYTES - len(suffix.encode("utf-8"))
    if room < 1:
        return ""
    raw = stem.encode("utf-8")
    cut = stem if len(raw) <= room else raw[:room].decode("utf-8", "ignore").rstrip()
    return cut + suffix if cut else ""


def variants(name: str, limit: int = 1000) -> Iterator[str]:
    """``name``, then ``stem (1).ext``, ``stem (2).ext``… for picking a free name; a stem
    too long for a variant to fit :data:`MAX_EDITOR_NAME_BYTES` is shortened."""
    yield name
    stem, ext = split_ext(name)
    for number in range(1, limit):
        candidate = fit_name(stem, f" ({number}){ext}")
        if candidate:
            yield candidate
