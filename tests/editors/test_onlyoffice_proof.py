"""OnlyOffice's three proof-key configurations, against a running wopibridge.

OnlyOffice publishes a ``<proof-key>`` only when both of its public keys are set, and signs only
when both private keys are set (``wopiClient.discovery``, ``wopiUtils.fillStandardHeaders``);
``X-WOPI-TimeStamp`` goes on every request either way. So "no key" and "the current key only"
send unsigned requests, "current and old key" signed ones. In ``verify`` mode each works and the
log says, once, how its requests are checked; in ``require`` mode unsigned requests are refused
with the spec's 500 and the log says why, once.
"""

from __future__ import annotations

import logging

import aiohttp
import pytest

from .conftest import IOP, PROOF, fixture_bytes
from .conftest import start as start_site
from .fake_onlyoffice import OnlyOfficeServer
from .fakebase import ProofSigner

CONFIGS = ("none", "current only", "current and old")


def configured(config: str) -> tuple[OnlyOfficeServer, bytes]:
    """The fake server with its private keys, and the discovery document it serves."""
    doc = PROOF.sub(b"", fixture_bytes("onlyoffice-runtime.xml"))
    if config == "none":
        return OnlyOfficeServer(), doc
    current = ProofSigner()
    if config == "current only":  # one public and one private key: neither published nor used
        return OnlyOfficeServer(current, None), doc
    old = ProofSigner()
    server = OnlyOfficeServer(current, old)
    element = ProofSigner.discovery_element(current)  # value: current, oldvalue: old
    return server, doc.replace(b"</wopi-discovery>", element.encode() + b"\n</wopi-discovery>")


async def start(tmp_path, discovery_server, aiohttp_server, doc: bytes, mode: str):
    discovery_server.docs["oo"] = doc
    apps = f"""
[apps.oo]
type = "onlyoffice"
discovery_url = "{discovery_server.url("oo")}"
proof_keys = "{mode}"
"""
    base, _ = await start_site(aiohttp_server, tmp_path, apps)
    (tmp_path / "data" / "p.docx").write_bytes(b"p0")
    return base, tmp_path / "data"


async def editor(http: aiohttp.ClientSession, base: str, server: OnlyOfficeServer):
    """The fake OnlyOffice's session on ``p.docx``, opened for editing through /wopi/open."""
    body = {"path": "p.docx", "app": "oo", "mode": "edit", "user": {"id": "u@idp", "name": "U"}}
    auth = {"Authorization": f"Bearer {IOP}"}
    async with http.post(f"{base}/wopi/open", json=body, headers=auth) as response:
        assert response.status == 200, await response.text()
        opened = await response.json()
    return server.editor(http, opened["app_url"], opened["form_parameters"]["access_token"])


@pytest.mark.parametrize("config", CONFIGS)
async def test_verify_mode_serves_each_configuration(
    config, tmp_path, discovery_server, aiohttp_server, caplog
):
    caplog.set_level(logging.INFO, logger="wopibridge.proofcheck")
    server, doc = configured(config)
    base, root = await start(tmp_path, discovery_server, aiohttp_server, doc, "verify")
    async with aiohttp.ClientSession() as http:
        oo = await editor(http, base, server)
        assert (server.signer is not None) == (config == "current and old")
        await oo.open()
        assert oo.editable
        assert (await oo.save(b"p1", exit_save=True)).status == 200
        assert (await oo.close()).status == 200
    assert (root / "p.docx").read_bytes() == b"p1"
    lines = [r.getMessage() for r in caplog.records if r.name == "wopibridge.proofcheck"]
    expected = {
        "none": "proof keys of app 'oo': its requests carry no proof-key signature; they are "
        "served unchecked (proof_keys = verify)",
        "current only": "proof keys of app 'oo': its requests carry no proof-key signature; "
        "they are served unchecked (proof_keys = verify)",
        "current and old": "proof keys of app 'oo': signed requests verified with its current "
        "and old key (proof_keys = verify)",
    }[config]
    assert lines == [expected]  # once, for the whole session


@pytest.mark.parametrize("config", CONFIGS)
async def test_require_mode_refuses_unsigned_and_says_why_once(
    config, tmp_path, discovery_server, aiohttp_server, caplog
):
    caplog.set_level(logging.INFO, logger="wopibridge.proofcheck")
    server, doc = configured(config)
    base, _ = await start(tmp_path, discovery_server, aiohttp_server, doc, "require")
    async with aiohttp.ClientSession() as http:
        oo = await editor(http, base, server)
        answers = [await oo.call("GET"), await oo.call("GET"), await oo.refresh()]
    if config == "current and old":
        assert [a.status for a in answers] == [200, 200, 409]  # REFRESH_LOCK: not locked
        return
    assert [a.status for a in answers] == [500, 500, 500]
    assert answers[0].body == b"The request carries no proof-key signature"
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refusals) == 1
    assert "its requests carry no proof-key signature, and proof_keys = require" in refusals[0]
    assert "wopi.privateKey and wopi.privateKeyOld" in refusals[0]


async def test_a_file_over_the_editors_limit_is_a_clear_open_error(
    tmp_path, discovery_server, aiohttp_server
):
    server, doc = configured("none")
    base, root = await start(tmp_path, discovery_server, aiohttp_server, doc, "verify")
    (root / "p.docx").write_bytes(b"x" * 2048)
    async with aiohttp.ClientSession() as http:
        oo = await editor(http, base, server)
        answer = await oo.call("GET", "/contents", {"X-WOPI-MaxExpectedSize": "1024"})
    assert answer.status == 412
    assert answer.body == (
        b"The file (2048 bytes) is larger than the editor accepts "
        b"(X-WOPI-MaxExpectedSize: 1024 bytes)"
    )
