from __future__ import annotations

import json
import multiprocessing
import stat
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from bot.server_keys import SECRETS_FILE, ServerKeyError, load_server_keys
from bot.settings import load_settings
from tests.conftest import key_b64


def test_secrets_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = load_settings({"HOTLINE_VAR_DIR": str(tmp_path / "var")})
    first = load_server_keys(settings)
    path = tmp_path / "var" / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_server_keys(settings) == first
    assert first.pseudonym_key not in first.encryption_keys.values()


def _first_run(var_dir: str, start: Barrier, keys: Queue[bytes]) -> None:
    start.wait()
    keys.put(load_server_keys(load_settings({"HOTLINE_VAR_DIR": var_dir})).pseudonym_key)


def test_processes_starting_together_share_the_keys_the_first_one_made(tmp_path: Path) -> None:
    """``hotline run --workers 8`` on a new install: every worker creates or reads the
    secrets at the same moment, and all must start, with the same keys."""
    context = multiprocessing.get_context("spawn")
    var_dir, start, keys = str(tmp_path / "var"), context.Barrier(8), context.Queue()
    workers = [context.Process(target=_first_run, args=(var_dir, start, keys)) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * 8
    made = [keys.get(timeout=5) for _ in workers]
    assert len(set(made)) == 1
    assert [path.name for path in (tmp_path / "var").iterdir()] == [SECRETS_FILE]  # no leftovers
    assert load_server_keys(load_settings({"HOTLINE_VAR_DIR": var_dir})).pseudonym_key == made[0]


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    settings = load_settings({
        "HOTLINE_VAR_DIR": str(tmp_path),
        "HOTLINE_PSEUDONYM_KEY": key_b64(7),
        "HOTLINE_ENCRYPTION_KEYS": f"new:{key_b64(8)},old:{key_b64(9)}",
    })
    keys = load_server_keys(settings)
    assert keys.pseudonym_key == bytes([7]) * 32
    assert keys.active_key_id == "new" and set(keys.encryption_keys) == {"new", "old"}
    assert not (tmp_path / SECRETS_FILE).exists()


def test_the_same_key_for_pseudonyms_and_encryption_is_refused(tmp_path: Path) -> None:
    settings = load_settings({"HOTLINE_VAR_DIR": str(tmp_path), "HOTLINE_PSEUDONYM_KEY": key_b64(3),
                              "HOTLINE_ENCRYPTION_KEYS": f"k1:{key_b64(3)}"})
    with pytest.raises(ServerKeyError, match="must differ"):
        load_server_keys(settings)


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    load_server_keys(load_settings({"HOTLINE_VAR_DIR": str(tmp_path)}))
    (tmp_path / SECRETS_FILE).chmod(0o644)
    with pytest.raises(ServerKeyError, match="chmod 600"):
        load_server_keys(load_settings({"HOTLINE_VAR_DIR": str(tmp_path)}))


def test_a_key_of_the_wrong_length_is_refused(tmp_path: Path) -> None:
    path = tmp_path / SECRETS_FILE
    path.write_text(json.dumps({"pseudonym_key": "c2hvcnQ=", "encryption_keys": [["k1", key_b64(1)]]}))
    path.chmod(0o600)
    with pytest.raises(ServerKeyError, match="32 bytes"):
        load_server_keys(load_settings({"HOTLINE_VAR_DIR": str(tmp_path)}))
