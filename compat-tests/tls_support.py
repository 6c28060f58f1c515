"""TLS for the tests: a certificate authority made with openssl, certificates it signs, and an
SSL context trusting it (conftest's servers serve HTTPS with them when given a CA)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Sequence

import pytest


class TestCA:
    """A throwaway CA (EC P-256) under `base`; `ca_pem` is what clients trust."""

    def __init__(self, base: Path, name: str = "tessera-test-ca") -> None:
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.key = self.base / "ca.key"
        self.ca_pem = self.base / "ca.pem"
        self._serial = 0
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.key)
        _openssl("req", "-x509", "-new", "-key", self.key, "-sha256", "-days", "3", "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-out", self.ca_pem)

    def issue(self, out_dir: Path, *, dns: Sequence[str] = ("localhost",), ips: Sequence[str] = ("127.0.0.1",),
              cn: str | None = None, key_type: str = "ec") -> Path:
        """Writes `public.crt` (leaf then CA) and `private.key` for these names into `out_dir`."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        self._serial += 1
        tmp = out_dir / ".issue"
        tmp.mkdir(exist_ok=True)
        key, csr, crt, ext = tmp / "k.pem", tmp / "r.csr", tmp / "c.pem", tmp / "ext.cnf"
        if key_type == "rsa":
            _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key)
        else:
            _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
        ext.write_text(f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth\n"
                       "basicConstraints=critical,CA:FALSE\n")
        _openssl("req", "-new", "-key", key, "-subj", f"/CN={cn or (list(dns) + list(ips))[0]}", "-out", csr)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_pem, "-CAkey", self.key, "-set_serial",
                 str(int(time.time() * 1000) + self._serial), "-days", "2", "-sha256", "-extfile", ext, "-out", crt)
        (out_dir / "public.crt").write_bytes(crt.read_bytes() + self.ca_pem.read_bytes())
        (out_dir / "private.key").write_bytes(key.read_bytes())
        shutil.rmtree(tmp)
        return out_dir


def _openssl(*args) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("openssl not found (scripts/test installs it)", pytrace=False)
    proc = subprocess.run([exe, *[str(a) for a in args]], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {proc.stderr}")


def ssl_context(ca_pem: Path | None):
    """An SSL context trusting `ca_pem` (None: no TLS)."""
    import ssl

    return None if ca_pem is None else ssl.create_default_context(cafile=str(ca_pem))


