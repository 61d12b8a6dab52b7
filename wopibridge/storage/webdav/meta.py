"""Metadata on WebDAV files: dead properties in wopibridge's namespace (PROPFIND/PROPPATCH)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from wopibridge.errors import BadRequest, Unavailable
from wopibridge.storage.webdav.client import DAV
from wopibridge.storage.webdav.ids import WebDavFiles

META_NS = "urn:wopibridge:meta"

_META_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class WebDavMeta(WebDavFiles):
    """``get_meta``/``set_meta`` of the Storage contract."""

    @staticmethod
    def _meta_tag(key: str) -> str:
        """An XML element name for a metadata key: itself when safe, else its hex form."""
        if _META_KEY.match(key) and not key.lower().startswith("xml"):
            return key
        if not key or len(key) > 512:
            raise BadRequest("Invalid metadata key")
        return "x-" + key.encode().hex()

    async def get_meta(self, file_id: str, key: str) -> str | None:
        tag = self._meta_tag(key)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<d:propfind xmlns:d="{DAV}" xmlns:m="{META_NS}"><d:prop><d:resourcetype/>'
            f"<m:{tag}/></d:prop></d:propfind>"
        ).encode()
        element = await self._dav.propfind(await self._path_of(file_id), body)
        for propstat in element.findall(f"{{{DAV}}}propstat"):
            status = propstat.findtext(f"{{{DAV}}}status") or ""
            found = propstat.find(f"{{{DAV}}}prop/{{{META_NS}}}{tag}")
            if found is not None and " 200 " in status + " ":
                return found.text or ""
        return None

    async def set_meta(self, file_id: str, key: str, value: str) -> None:
        tag = self._meta_tag(key)
        root = ET.Element(f"{{{DAV}}}propertyupdate")
        prop = ET.SubElement(ET.SubElement(root, f"{{{DAV}}}set"), f"{{{DAV}}}prop")
        ET.SubElement(prop, f"{{{META_NS}}}{tag}").text = value
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        path = await self._path_of(file_id)
        response = await self._dav.request(
            "PROPPATCH",
            path,
            headers={"Content-Type": "application/xml; charset=utf-8"},
            data=body,
        )
        try:
            if response.status != 207:
                raise self._dav.error(response.status, what="annotate")
            payload = await response.read()
        finally:
            response.release()
        try:
            statuses = [s.text or "" for s in ET.fromstring(payload).iter(f"{{{DAV}}}status")]
        except ET.ParseError:
            raise Unavailable(f"The storage {self.name} sent an unreadable answer") from None
        failed = [s for s in statuses if " 200 " not in s + " "]
        if failed:
            code = int(failed[0].split()[1]) if len(failed[0].split()) > 1 else 500
            raise self._dav.error(code, what="annotate")
