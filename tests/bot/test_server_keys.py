from __future__ import annotations

import json
import stat
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
