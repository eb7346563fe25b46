"""Loaded by the server under test (PYTHONPATH): records every outgoing connection and
name lookup it makes, so that a test can prove nothing leaves the machine except to
loopback (the fake providers, Redis). Python's audit hooks see every socket."""

import os
import sys

_LOG = os.environ.get("HOTLINE_EGRESS_LOG")


def _record(event: str, args: tuple) -> None:
    if event == "socket.connect":
        line = f"connect {args[1]!r}\n"
    elif event == "socket.getaddrinfo":
        line = f"lookup {args[0]!r}\n"
    else:
        return
    with open(_LOG, "a", encoding="utf-8") as log:
        log.write(line)


if _LOG:
    sys.addaudithook(_record)
