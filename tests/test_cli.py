"""``hotline`` and ``make`` as an admin meets them: clear one-line errors, no tracebacks."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import (
    HOTLINE,
    TELEGRAM_SECRET,
    TELEGRAM_TOKEN,
    free_port,
    server_environ,
    wait_for_banner,
)
from tests.fakes import FakeTelegram


def run_hotline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOTLINE), *args], env=env, capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT)


def test_a_second_server_on_the_same_port_says_the_port_is_in_use(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_hotline(server_environ(tmp_path, HOTLINE_PORT=str(port)), "run")
    assert result.returncode == 1
    assert result.stderr.strip() == (f"hotline: port {port} on 127.0.0.1 is in use; is Hotline already "
                                     "running? Stop it or set HOTLINE_PORT.")


def test_unreachable_redis_is_one_line_and_a_non_zero_exit(tmp_path: Path, model_settings: Settings) -> None:
    env = server_environ(tmp_path, HOTLINE_PORT=str(free_port()), REDIS_URL="redis://127.0.0.1:1/0",
                         HOTLINE_MODEL_DIR=str(model_settings.model_dir))
    result = run_hotline(env, "run")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("hotline:")]
    assert lines == [line for line in result.stderr.splitlines() if "Traceback" in line or
                     line.startswith("hotline:")]
    assert len(lines) == 1 and "Redis at redis://127.0.0.1:1/0 is unreachable" in lines[0]


def test_workers_must_be_a_whole_number_and_a_worker_that_cannot_start_stops_the_server(
        tmp_path: Path, model_settings: Settings) -> None:
    env = server_environ(tmp_path, HOTLINE_PORT=str(free_port()), REDIS_URL="redis://127.0.0.1:1/0",
                         HOTLINE_MODEL_DIR=str(model_settings.model_dir))
    for bad in ("0", "two"):
        refused = run_hotline(env, "run", "--workers", bad)
        assert refused.returncode == 2 and "a whole number, 1 or more" in refused.stderr
    result = run_hotline(env, "run", "--workers", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Redis at redis://127.0.0.1:1/0 is unreachable" in result.stderr
    assert "a worker exited while starting" in result.stderr


def test_bad_configuration_lists_every_problem(tmp_path: Path) -> None:
    env = server_environ(tmp_path, HOTLINE_PORT="http", REDIS_URL="localhost")
    result = run_hotline(env, "run")
    assert result.returncode == 2
    assert "HOTLINE_PORT" in result.stderr and "REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_stale_model_is_refused(tmp_path: Path) -> None:
    env = server_environ(tmp_path / "var", HOTLINE_PORT=str(free_port()),
                         HOTLINE_MODEL_DIR=str(tmp_path / "empty-models"))
    result = run_hotline(env, "run")
    assert result.returncode == 1
    assert "no model trained from the current data" in result.stderr and "hotline train" in result.stderr
    assert not (tmp_path / "var" / "redis.sock").exists()  # the Redis it started stopped with it


def test_train_is_a_no_op_when_nothing_changed(model_settings: Settings) -> None:
    env = server_environ(Path("/unused"), HOTLINE_MODEL_DIR=str(model_settings.model_dir))
    result = run_hotline(env, "train")
    assert result.returncode == 0 and result.stdout.startswith("model up to date:")


def test_a_new_server_offers_a_one_time_setup_link_and_stops_cleanly(
        tmp_path: Path, model_settings: Settings) -> None:
    port = free_port()
    env = server_environ(tmp_path, HOTLINE_PORT=str(port), HOTLINE_MODEL_DIR=str(model_settings.model_dir))
    process = subprocess.Popen([str(HOTLINE), "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, cwd=PROJECT_ROOT)
    try:
        banner = wait_for_banner(process, timeout=120)
        assert (tmp_path / "redis.sock").exists()
        link = re.search(r"/console/#setup=(\S+)", banner)
        assert link is not None, banner
        first = {"token": link.group(1), "name": "first-admin", "password": "a long admin password"}
        made = _post_json(f"http://127.0.0.1:{port}/console/api/setup", first)
        assert made[0] == 200 and made[1]["totp_uri"].startswith("otpauth://totp/Hotline:first-admin")
        again = _post_json(f"http://127.0.0.1:{port}/console/api/setup", {**first, "name": "second"})
        assert again == (403, {"error": "setup_closed",
                               "message": "This setup link is not valid (used, expired or not needed)."})
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
        assert process.stdout is not None
        process.stdout.close()
    assert not (tmp_path / "redis.sock").exists()


def test_make_without_python_310_says_what_to_install(tmp_path: Path) -> None:
    result = subprocess.run(["make", "install", "PYTHON310=", f"VENV={tmp_path / 'venv'}"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Python 3.10 is required" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_telegram_set_webhook_registers_the_secret(tmp_path: Path, fake_telegram: FakeTelegram) -> None:
    env = server_environ(tmp_path, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
                         TELEGRAM_API_BASE=fake_telegram.url, HOTLINE_PUBLIC_URL="https://hotline.example.org")
    result = run_hotline(env, "telegram", "set-webhook")
    assert result.returncode == 0, result.stderr
    (call,) = fake_telegram.of("setWebhook")[-1:]
    assert call.params["url"] == "https://hotline.example.org/webhooks/telegram"
    assert call.params["secret_token"] == TELEGRAM_SECRET
    assert TELEGRAM_SECRET not in result.stdout + result.stderr


def test_telegram_set_webhook_without_settings_says_what_is_missing(tmp_path: Path) -> None:
    result = run_hotline(server_environ(tmp_path), "telegram", "set-webhook")
    assert result.returncode == 2 and "TELEGRAM_WEBHOOK_SECRET" in result.stderr


def test_triage_answers_every_line_in_order_and_explains_itself(tmp_path: Path,
                                                               model_settings: Settings) -> None:
    env = server_environ(tmp_path, HOTLINE_MODEL_DIR=str(model_settings.model_dir))
    lines = [
        {"text": "me encerraron en un cuarto y se llevaron la llave, pueden mandar a alguien?",
         "channel": "sms"},
        "this is not json",
        {"text": "what is human trafficking? it's for a school project"},
        {"text": "mon patron a pris mon passeport et je dois rembourser une dette", "lang": "fr"},
    ]
    stdin = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    result = subprocess.run([str(HOTLINE), "triage"], input=stdin, env=env, capture_output=True, text=True,
                            timeout=120, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    danger, bad, question, documents = (json.loads(line) for line in result.stdout.splitlines())
    assert (danger["priority"], danger["language"], danger["kind"], danger["channel"]) == (
        "P1", "es", "help_request", "sms")
    assert danger["reasons"] and "immediate_danger" in danger["indicators"]
    assert bad == {"line": 2, "error": "not JSON (Expecting value)"}
    # Trafficking words in a question: no alarm (an unsure reading may still ask for a look).
    assert question["priority"] in ("P3", "P4") and question["kind"] == "information"
    assert documents["priority"] == "P2"
    assert {"documents_retained", "debt_bondage"} <= set(documents["indicators"])


def _post_json(url: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
