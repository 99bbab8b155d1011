"""The command line at start: a web port that is taken or is no port is one line and exit 1 before any
server starts; Ctrl-C while it starts is no traceback; a bad setting names its variable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

#: servers given (nothing listens there): no command starts embedded ones
SERVICES = {"PARLEY_KAFKA_URL": "kafka://127.0.0.1:1", "PARLEY_MONGO_URL": "mongodb://127.0.0.1:1"}


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without its PARLEY_ settings, with ``settings`` instead."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}, **settings}


def run(args: list[str], tmp_path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parley", *args], env=clean_env(PARLEY_DATA_DIR=str(tmp_path), **settings),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("command", ["dev", "worker", "web"])
def test_a_taken_port_is_one_line_before_anything_starts(command, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run([command, "--port", str(port)], tmp_path, **SERVICES)
    assert done.returncode == 1, done.stderr
    assert f"parley {command}: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr and "Parley dev: broker" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_port_out_of_range_is_refused_by_the_command_line(tmp_path):
    done = run(["dev", "--port", "99999"], tmp_path, **SERVICES)
    assert done.returncode == 2
    assert "99999 is not a port" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_setting_names_its_variable_and_the_value_unless_it_may_be_a_secret(tmp_path):
    done = run(["dev", "--port", "0"], tmp_path, PARLEY_WS_MESSAGES_PER_MINUTE="abc", PARLEY_LLM_TIMEOUT_S="soon",
               PARLEY_ADMIN_API_KEY="s3cr3t-" * 2 + "x" * 40, PARLEY_PROMETHEUS_URL="http://user:pa55w0rd@prom:9090 ",
               PARLEY_MONGO_URL="mysql://admin:hunter2@db:3306/parley")
    assert done.returncode == 1
    assert "PARLEY_WS_MESSAGES_PER_MINUTE: Input should be a valid number" in done.stderr
    assert "(got 'abc')" in done.stderr and "(got 'soon')" in done.stderr
    assert "s3cr3t" not in done.stderr and "pa55w0rd" not in done.stderr
    # a URL that is refused is named without its credentials
    assert "PARLEY_MONGO_URL is not a mongodb:// URL" in done.stderr and "hunter2" not in done.stderr


@pytest.mark.parametrize("after_s", [0.3, 1.0])
def test_ctrl_c_while_parley_dev_starts_is_no_traceback(after_s, tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "parley", "dev", "--port", "0", "--data-dir", str(tmp_path)],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # as in a terminal: a runner that started the tests in the background may ignore SIGINT
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    try:
        time.sleep(after_s)  # importing, or starting the embedded servers
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # -SIGINT: the signal came before Python had started to handle it (nothing printed either)
    assert process.returncode in (0, 130, -signal.SIGINT), err
    assert "Traceback" not in err, err
