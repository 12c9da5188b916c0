"""herd-server's command line and config errors; herdctl up, send and status."""

import json
import os
import resource
import signal
import socket
import subprocess
import time

from herdtest import Herd, Skip, Tap, binary_arg, free_ports, scratch_dir, wait_until


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=30, **kw)


def write_config(text):
    path = os.path.join(scratch_dir("herd-config-"), "herd.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def config_errors_refuse_to_start(server):
    cases = [
        ("[servers.A]\nport = 1\nprot = 2\n", "A", ":3:1: servers.A.prot: unknown key"),
        ("[servers.A]\nport = 1\ntalks_with = [\"B\"]\n", "A", ":3:15: servers.A.talks_with: unknown server \"B\""),
        ("[servers.A]\nport = 5000\n[servers.B]\nport = 5000\n", "A", ":4:8: servers.B.port: port 5000 on 127.0.0.1 is already used by servers.A"),
        ("[servers.A]\nport = \"x\"\n", "A", ":2:8: servers.A.port: expected an integer, got a string"),
        ("[servers.A]\nport = 1\n", "Z", ": servers.Z: no such server (the file defines: A)"),
    ]
    for text, name, expected in cases:
        path = write_config(text)
        result = run([server, "--config", path, name])
        assert result.returncode == 2, (text, result)
        assert result.stderr.startswith(f"herd-server: {path}{expected}"), (expected, result.stderr)
    missing = run([server, "--config", "/nonexistent/herd.toml", "A"])
    assert missing.returncode == 2 and "/nonexistent/herd.toml: cannot read the file" in missing.stderr


def command_line(server):
    assert run([server, "--help"]).stdout.startswith("usage: herd-server")
    bad = run([server])
    assert bad.returncode == 2 and "SERVER_NAME is missing" in bad.stderr
    assert run([server, "--threads", "0", "A"]).returncode == 2


def port_in_use(server):
    # Without a store: a second server on the same directory would stop at its lock first.
    herd = Herd(server, links={"A": []}, extra_toml='[store]\ndir = ""\n').start()
    try:
        result = run([server, "--config", herd.config, "A"])
        assert result.returncode == 1 and "cannot listen on 127.0.0.1:" in result.stderr, result
    finally:
        herd.stop()


def many_clients_at_once(server):
    """A server started with the usual soft limit of 1,024 descriptors takes more clients."""
    clients = 1500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < clients + 200:
        raise Skip(f"the hard limit on open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what the server inherits
    try:
        herd = Herd(server, links={"Solo": []}).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # room for this test's sockets
    connections = []
    try:
        for i in range(clients):
            s = socket.create_connection(("127.0.0.1", herd.ports["Solo"]), timeout=10)
            connections.append(s)
            s.sendall(f"IAMAT many{i} +1+1 1\n".encode())
        for i, s in enumerate(connections):
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(4096)
                assert chunk, f"client {i} was closed without a reply"
                reply += chunk
            assert reply.startswith(b"AT Solo ") and f" many{i} ".encode() in reply, (i, reply)
        assert "accept failed" not in herd.log("Solo")
    finally:
        for s in connections:
            s.close()
        herd.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def herdctl_send(server, herdctl):
    herd = Herd(server).start()
    try:
        herd.wait_linked()
        ok = run([herdctl, "--config", herd.config, "send", "Goloman", "IAMAT ctl.example +1+1 1520023934.5"])
        assert ok.returncode == 0 and ok.stdout.startswith("AT Goloman "), ok
        piped = run([herdctl, "--config", herd.config, "send", "Hands"],
                    input="IAMAT ctl2.example +1+1 1\nWHATSAT ctl.example 10 2\n")
        assert piped.returncode == 0 and piped.stdout.count("AT ") == 2 and piped.stdout.endswith("\n\n"), piped
        refused = run([herdctl, "--config", herd.config, "send", "Goloman", "WHATSAT nobody 10 2"])
        assert refused.returncode == 1 and refused.stdout == "? WHATSAT nobody 10 2\n", refused
        status = run([herdctl, "--config", herd.config, "status"])
        assert status.returncode == 0 and status.stdout.count("listening") == 5, status
        herd.kill("Welsh")
        down = run([herdctl, "--config", herd.config, "send", "Welsh", "IAMAT a +1+1 1"])
        assert down.returncode == 1 and "cannot reach Welsh at 127.0.0.1:" in down.stderr, down
        assert run([herdctl, "--config", herd.config, "status"]).returncode == 1
        unknown = run([herdctl, "--config", herd.config, "send", "Nobody", "x"])
        assert unknown.returncode == 2 and "no such server" in unknown.stderr, unknown
    finally:
        herd.stop()


def herdctl_up(server, herdctl):
    herd = Herd(server)  # only for its generated config; herdctl starts the servers
    proc = subprocess.Popen([herdctl, "--config", herd.config, "--server-bin", server, "up"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(line.startswith("Ctrl-C") for line in lines):
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read())
            lines.append(line)
        table = "".join(lines)
        for name in herd.names:
            assert name in table and str(herd.ports[name]) in table, table
            assert herd.listening(name)
        assert "Goloman" in table and "Hands, Holiday, Wilkes" in table
        reply = herd.send("Welsh", "IAMAT up.example +1+1 1")
        assert reply.startswith("AT Welsh"), reply
        wait_until(lambda: herd.send("Hands", "WHATSAT up.example 1 1").startswith("AT Welsh"), 10, "flood")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
        for name in herd.names:
            assert not herd.listening(name), name
    finally:
        if proc.poll() is None:
            proc.kill()


def herdctl_up_hangup(server, herdctl):
    """A closing terminal sends SIGHUP to herdctl and its servers alike."""
    herd = Herd(server, links={"Solo": []})
    proc = subprocess.Popen([herdctl, "--config", herd.config, "--server-bin", server, "up"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        while not (line := proc.stdout.readline()).startswith("Ctrl-C"):
            assert line, proc.stderr.read()
        assert herd.send("Solo", "IAMAT hup.example +1+1 1").startswith("AT Solo")
        os.killpg(proc.pid, signal.SIGHUP)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
        assert not herd.listening("Solo")
        log = herd.log("Solo")
        assert "SIGHUP received" in log and log.splitlines()[-1].endswith("stopped"), log[-300:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def bench_json(herdctl, *args):
    result = run([herdctl, *args[:2], "bench", "--json", *args[2:]])
    return result, (json.loads(result.stdout) if result.stdout else None)


def herdctl_bench(server, herdctl):
    """herdctl bench against a real server: its JSON, and exactly -n requests answered."""
    herd = Herd(server, links={"Solo": []}).start()
    config = ["--config", herd.config]
    address = f"127.0.0.1:{herd.ports['Solo']}"
    try:
        result, report = bench_json(herdctl, *config, "-c", "4", "-P", "3", "-n", "1000", "Solo")
        assert result.returncode == 0, result
        for key in ("rps", "count", "errors", "refused", "elapsed_s", "p50_us", "p99_us", "max_us"):
            assert key in report, (key, report)
        assert report["count"] == 1000 and report["errors"] == 0 and report["refused"] == 0, report
        assert report["connections"] == 4 and report["in_flight"] == 3, report
        assert 0 < report["p50_us"] <= report["p99_us"] <= report["max_us"] and report["rps"] > 0
        # The default line is an IAMAT for a new client each time: c0 ... c999.
        assert herd.send("Solo", "WHATSAT c999.cs.ucla.edu 10 1").startswith("AT Solo ")

        result, report = bench_json(herdctl, *config, "-1", "-c", "5", "-n", "50", address)
        assert result.returncode == 0 and report["count"] == 50 and report["one_shot"], result
        result, report = bench_json(herdctl, *config, "-b", "-c", "2", "-P", "2", "-n", "20",
                                    "-l", "WHATSAT c1.cs.ucla.edu 10 2", "Solo")
        assert result.returncode == 0 and report["count"] == 20, result
        result, report = bench_json(herdctl, *config, "-b", "-c", "1", "-n", "5",
                                    "-l", "WHATSAT nobody.example 10 2", "Solo")
        assert result.returncode == 1 and report["count"] == 5 and report["refused"] == 5, result
        assert '5 replies were "? " (refused)' in result.stderr, result

        text = run([herdctl, "bench", "-c", "2", "-n", "10", address])
        assert text.returncode == 0 and "10 replies in" in text.stdout, text
        assert "latency: p50 " in text.stdout and "0 errors, 0 refused" in text.stdout, text
    finally:
        herd.stop()
    [closed] = free_ports(1)
    down = run([herdctl, "bench", "-n", "5", f"127.0.0.1:{closed}"])
    assert down.returncode == 1 and f"cannot connect to 127.0.0.1:{closed}" in down.stderr, down
    for bad in (["bench"], ["bench", "-c", "0", "x:1"], ["bench", "-l", "%q", "x:1"],
                ["bench", "-1", "-P", "4", "x:1"]):
        wrong = run([herdctl, *bad])
        assert wrong.returncode == 2 and wrong.stderr.startswith("herdctl: bench: "), (bad, wrong)


def herdctl_help(herdctl):
    assert run([herdctl, "--help"]).stdout.startswith("usage: herdctl")
    assert run([herdctl, "up", "--help"]).stdout.startswith("usage: herdctl [--config PATH] up")
    assert run([herdctl, "send", "--help"]).stdout.startswith("usage: herdctl [--config PATH] send")
    bench_help = run([herdctl, "bench", "--help"])
    assert bench_help.returncode == 0, bench_help
    assert bench_help.stdout.startswith("usage: herdctl [--config PATH] bench [OPTIONS] TARGET")
    for option in ("--connections", "--in-flight", "--requests", "--duration", "--line",
                   "--one-shot", "--blank-line", "--json"):
        assert option in bench_help.stdout, option
    assert "bench" in run([herdctl, "--help"]).stdout
    assert run([herdctl]).returncode == 2
    assert run([herdctl, "--config", "/nonexistent.toml", "status"]).returncode == 2


def main():
    server, herdctl = binary_arg("server"), binary_arg("herdctl")
    tap = Tap()
    tap.run("config errors refuse to start, naming file, line and key", config_errors_refuse_to_start, server)
    tap.run("herd-server's command line", command_line, server)
    tap.run("a port in use is a clear error", port_in_use, server)
    tap.run("more clients at once than the usual limit of 1,024 descriptors", many_clients_at_once, server)
    tap.run("herdctl send and status", herdctl_send, server, herdctl)
    tap.run("herdctl up starts the herd and Ctrl-C stops it", herdctl_up, server, herdctl)
    tap.run("herdctl up: a closing terminal (SIGHUP) stops the herd", herdctl_up_hangup, server, herdctl)
    tap.run("herdctl bench: JSON, exact counts, refusals, clear errors", herdctl_bench, server, herdctl)
    tap.run("herdctl --help everywhere", herdctl_help, herdctl)
    tap.finish()


if __name__ == "__main__":
    main()
