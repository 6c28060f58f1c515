"""What every bench script needs: the server binary to start and a free loopback port."""

from __future__ import annotations

import os
import socket


def binary() -> str:
    """The tessera binary: $TESSERA_BIN, else the release build in the cargo target dir."""
    if os.environ.get("TESSERA_BIN"):
        return os.environ["TESSERA_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/tessera-target"))
    return os.path.join(target, "release", "tessera")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
