"""TLS on Linux when given a certificate (stringcare manager --web ... --tls-cert/--tls-key,
stringcare_host/webui.py): the interface answers over HTTPS only, and its session
cookie carries Secure besides HttpOnly and SameSite=Strict.  A certificate that cannot
be loaded is refused with a message naming the option."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stringcare_host import webui
from stringcare_host.errors import UserError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def self_signed(tmp: Path) -> tuple[str, str]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60)  # fmt: skip
    return str(cert), str(key)


def test_https_with_a_given_certificate(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    ui = webui.WebUI("127.0.0.1", 0, certfile=cert, keyfile=key, iterations=1000)
    try:
        assert ui.url().startswith("https://")
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False  # the certificate names localhost, we dial 127.0.0.1
        body = json.dumps({"code": ui.auth.setup_code, "user": "admin",
                           "password": "tls password"}).encode()  # fmt: skip
        req = urllib.request.Request(
            ui.url() + "api/setup", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            cookie = r.headers["Set-Cookie"]
        assert re.search(r"HttpOnly.*SameSite=Strict.*Secure", cookie), cookie
        # plain HTTP on the same port gets no answer
        with pytest.raises((OSError, http.client.HTTPException)):
            urllib.request.urlopen(ui.url().replace("https", "http") + "api/me", timeout=10)
    finally:
        ui.shutdown()


def test_a_certificate_that_cannot_be_loaded_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(UserError) as err:
        webui.WebUI("127.0.0.1", 0, certfile=str(bad))
    assert "--tls-cert" in str(err.value)
