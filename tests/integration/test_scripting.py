#!/usr/bin/env python3
"""herdctl for scripts: send to HOST:PORT without a config, stdin's lines, --json, where the
config file is found, and --version of both programs."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading

from herdtest import Herd, Skip, Tap, binary_arg, free_ports, scratch_dir

SOURCE_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
UCLA = "+34.068930-118.445127"


def no_config_env():
    """The environment with no HERD_CONFIG, and a directory with no herd.toml to run from."""
    env = {k: v for k, v in os.environ.items() if k != "HERD_CONFIG"}
    return env, scratch_dir("herd-nowhere-")


def run(args, input=None, env=None, cwd=None):
    return subprocess.run(args, input=input, capture_output=True, timeout=30, env=env, cwd=cwd,
                          text=isinstance(input, str) or input is None)


def host_port_without_config(server, herdctl):
    env, nowhere = no_config_env()
    herd = Herd(server, links={"Solo": []}).start()
    address = f"127.0.0.1:{herd.ports['Solo']}"
    try:
        ok = run([herdctl, "send", address, f"IAMAT hp.example {UCLA} 1"], env=env, cwd=nowhere)
        assert ok.returncode == 0 and ok.stdout.startswith("AT Solo ") and ok.stderr == "", ok
        whatsat = run([herdctl, "send", address, "WHATSAT hp.example 10 1"], env=env, cwd=nowhere)
        assert whatsat.returncode == 0 and whatsat.stdout.endswith("\n\n"), whatsat
        json.loads(whatsat.stdout.split("\n", 1)[1])
    finally:
        herd.stop()
    [closed] = free_ports(1)
    down = run([herdctl, "send", f"127.0.0.1:{closed}", "IAMAT a +1+1 1"], env=env, cwd=nowhere)
    assert down.returncode == 1 and f"cannot reach 127.0.0.1:{closed}: " in down.stderr, down


class LineServer:
    """A server on an address of its own (IPv6 here) answering each line "AT Fake ..."."""

    def __init__(self, family, host):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen()
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:  # closed by close(): nobody came
            return
        with conn:
            conn.settimeout(20)
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
            for line in data.decode().splitlines():
                self.received.append(line)
                conn.sendall(f"AT Fake +0.000000001 {line.split()[1]} +1+1 1\n".encode())

    def close(self):
        """Called once the client is done: it has been served, or it never came."""
        self.thread.join(timeout=5)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes an accept() still waiting
        except OSError:
            pass
        self.thread.join(timeout=5)
        self.sock.close()


def ipv6_host_port(herdctl):
    if not socket.has_ipv6:
        raise Skip("no IPv6")
    try:
        fake = LineServer(socket.AF_INET6, "::1")
    except OSError as e:
        raise Skip(f"cannot listen on [::1]: {e}")
    env, nowhere = no_config_env()
    try:
        result = run([herdctl, "send", "--json", f"[::1]:{fake.port}", "IAMAT six +1+1 1"],
                     env=env, cwd=nowhere)
    finally:
        fake.close()
    assert result.returncode == 0, result
    reply = json.loads(result.stdout)
    assert reply == {"server": f"[::1]:{fake.port}", "line": "IAMAT six +1+1 1",
                     "at": "AT Fake +0.000000001 six +1+1 1"}, reply
    assert fake.received == ["IAMAT six +1+1 1"]


def stdin_lines(server, herdctl):
    """Lines from a pipe, answered in order; a last line without a newline counts."""
    herd = Herd(server, links={"Solo": []}).start()
    address = f"127.0.0.1:{herd.ports['Solo']}"
    try:
        lines = [f"IAMAT in1 {UCLA} 1", "WHATSAT in1 10 2", "nonsense", "WHATSAT nobody 1 1",
                 f"IAMAT in2 {UCLA} 2"]
        result = run([herdctl, "send", address], input="\n".join(lines))  # no last newline
        assert result.returncode == 1, result  # two lines were refused
        out = result.stdout
        assert out.startswith("AT Solo "), out
        first, rest = out.split("\n", 1)
        assert first.endswith(f" in1 {UCLA} 1"), out
        at, rest = rest.split("\n", 1)
        assert at == first, out
        places, rest = rest.split("\n\n", 1)
        json.loads(places)
        assert rest.startswith("? nonsense\n? WHATSAT nobody 1 1\nAT Solo "), out
        assert rest.endswith(f" in2 {UCLA} 2\n"), out

        empty = run([herdctl, "send", address], input="")
        assert empty.returncode == 0 and empty.stdout == "", empty
    finally:
        herd.stop()


def stdin_replies_as_lines_arrive(server, herdctl):
    """With a pipe held open, each line is answered before the next is written."""
    herd = Herd(server, links={"Solo": []}).start()
    proc = subprocess.Popen([herdctl, "send", f"127.0.0.1:{herd.ports['Solo']}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    watchdog = threading.Timer(20, proc.kill)
    watchdog.start()
    try:
        for i in range(3):
            proc.stdin.write(f"IAMAT live{i} +1+1 {i}\n")
            proc.stdin.flush()
            reply = proc.stdout.readline()
            assert reply.startswith("AT Solo ") and f" live{i} " in reply, (i, reply)
        proc.stdin.close()
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
        assert proc.stdout.read() == ""
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
        herd.stop()


def json_lines(output):
    """Each line of `output` is one JSON object, as json.tool --json-lines agrees."""
    tool = subprocess.run([sys.executable, "-m", "json.tool", "--json-lines"], input=output,
                          capture_output=True, timeout=30)
    assert tool.returncode == 0, tool
    return [json.loads(line) for line in output.decode("utf-8").splitlines()]


def send_json(server, herdctl):
    herd = Herd(server, links={"Solo": []}).start()
    address = f"127.0.0.1:{herd.ports['Solo']}"
    try:
        lines = [f"IAMAT js.example {UCLA} 1", "WHATSAT js.example 10 3", "WHATSAT nobody 10 3",
                 'say "hi"\\ \t there']
        result = run([herdctl, "--config", herd.config, "send", "--json", "Solo"],
                     input=("\n".join(lines) + "\n").encode() + b"caf\xc3\xa9 \xff\n")
        assert result.returncode == 1, result  # "?" answers
        iamat, whatsat, unknown, odd, bytes_ = json_lines(result.stdout)
        assert set(iamat) == {"server", "line", "at"}, iamat
        assert iamat["server"] == "Solo" and iamat["line"] == lines[0], iamat
        assert re.match(rf"^AT Solo [+-]\d+\.\d{{9}} js\.example {re.escape(UCLA)} 1$", iamat["at"])
        assert set(whatsat) == {"server", "line", "at", "places"}, whatsat
        assert whatsat["at"] == iamat["at"] and whatsat["places"]["status"] == "OK", whatsat
        assert 0 < len(whatsat["places"]["results"]) <= 3, whatsat
        assert unknown == {"server": "Solo", "line": lines[2], "error": f"? {lines[2]}"}, unknown
        assert odd == {"server": "Solo", "line": lines[3], "error": f"? {lines[3]}"}, odd
        assert bytes_["line"] == "caf\u00e9 \ufffd" and bytes_["error"] == "? caf\u00e9 \ufffd"

        by_address = run([herdctl, "send", "--json", address, "WHATSAT js.example 10 1"])
        assert by_address.returncode == 0, by_address
        [reply] = json_lines(by_address.stdout.encode())
        assert reply["server"] == address and len(reply["places"]["results"]) == 1, reply
    finally:
        herd.stop()


def config_discovery(server, herdctl):
    env, nowhere = no_config_env()
    for args in (["status"], ["send", "Solo", "IAMAT a +1+1 1"], ["up"]):
        missing = run([herdctl, *args], env=env, cwd=nowhere)
        assert missing.returncode == 2, (args, missing)
        message = missing.stderr
        assert message.startswith("herdctl: no config file: ") and "herd.toml" in message, message
        assert nowhere in message and "HERD_CONFIG" in message and "--config PATH" in message

    herd = Herd(server, links={"Solo": []}).start()
    try:
        named = dict(env, HERD_CONFIG=herd.config)
        status = run([herdctl, "status"], env=named, cwd=nowhere)
        assert status.returncode == 0 and "listening" in status.stdout, status
        sent = run([herdctl, "send", "Solo", "IAMAT env.example +1+1 1"], env=named, cwd=nowhere)
        assert sent.returncode == 0 and sent.stdout.startswith("AT Solo "), sent

        # ./herd.toml comes before HERD_CONFIG.
        here = scratch_dir("herd-here-")
        shutil.copy(herd.config, os.path.join(here, "herd.toml"))
        wrong = dict(env, HERD_CONFIG="/nonexistent/herd.toml")
        local = run([herdctl, "send", "Solo", "IAMAT here.example +1+1 1"], env=wrong, cwd=here)
        assert local.returncode == 0 and local.stdout.startswith("AT Solo "), local
        bad = run([herdctl, "status"], env=wrong, cwd=nowhere)
        assert bad.returncode == 2, bad
        assert "/nonexistent/herd.toml: cannot read the file (named by HERD_CONFIG)" in bad.stderr
    finally:
        herd.stop()


def project_version():
    with open(os.path.join(SOURCE_ROOT, "meson.build")) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)


def versions(server, herdctl):
    version = project_version()
    for program, name in ((server, "herd-server"), (herdctl, "herdctl")):
        result = run([program, "--version"])
        assert result.returncode == 0 and result.stdout == f"{name} {version}\n", result
        assert "--version" in run([program, "--help"]).stdout
    send_help = run([herdctl, "send", "--help"]).stdout
    assert "--json" in send_help and "HOST:PORT" in send_help, send_help


def main():
    # Absolute: some tests run the programs from a directory of their own.
    server, herdctl = (os.path.abspath(binary_arg(name)) for name in ("server", "herdctl"))
    tap = Tap()
    tap.run("herdctl send HOST:PORT needs no config file", host_port_without_config, server, herdctl)
    tap.run("herdctl send [::1]:PORT", ipv6_host_port, herdctl)
    tap.run("herdctl send: standard input's lines, replies in order", stdin_lines, server, herdctl)
    tap.run("herdctl send: each line answered as it arrives on a pipe",
            stdin_replies_as_lines_arrive, server, herdctl)
    tap.run("herdctl send --json: one JSON object per reply", send_json, server, herdctl)
    tap.run("herdctl finds herd.toml, then HERD_CONFIG, else says how", config_discovery, server,
            herdctl)
    tap.run("--version of herd-server and herdctl", versions, server, herdctl)
    tap.finish()


if __name__ == "__main__":
    main()
