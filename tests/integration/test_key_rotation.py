"""Rotating the encryption key on the real server while a person is mid-conversation:
no downtime, nothing lost, and the old key can then be retired."""

from __future__ import annotations

import json
import subprocess

import aiohttp

from tests.conftest import HOTLINE, PROJECT_ROOT, RunningServer, server_environ


def hotline(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOTLINE), *args], capture_output=True, text=True, timeout=120,
                          env=server_environ(server.var_dir), cwd=PROJECT_ROOT)


async def test_a_key_is_rotated_and_retired_while_a_person_writes(server: RunningServer) -> None:
    ring = json.loads((server.var_dir / "secrets.json").read_text())["encryption_keys"]
    old = ring[0][0]
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url) as ws:
        await ws.send_json({"type": "message", "text": "I need help, my employer keeps my passport"})
        replies = [await ws.receive_json(timeout=30) for _ in range(3)]
        assert "paid what you were promised" in replies[-1]["text"]

        rotated = hotline(server, "keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        assert "re-encrypted:" in rotated.stdout and "rewritten" in rotated.stdout
        await ws.send_json({"type": "message", "text": "/skip"})  # the tracker now sealed anew
        assert "passport or ID papers" in (await ws.receive_json(timeout=30))["text"]

        retired = hotline(server, "keys", "retire", old)
        assert retired.returncode == 0, retired.stdout + retired.stderr
        again = hotline(server, "keys", "retire", old)
        assert again.returncode == 2 and f"there is no key {old}" in again.stderr
        await ws.send_json({"type": "message", "text": "/skip"})
        assert "owe money" in (await ws.receive_json(timeout=30))["text"]
    ring = json.loads((server.var_dir / "secrets.json").read_text())["encryption_keys"]
    assert old not in [kid for kid, _ in ring] and len(ring) == 1
    assert (server.var_dir / "secrets.json").stat().st_mode & 0o077 == 0
