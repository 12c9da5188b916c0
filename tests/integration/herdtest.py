"""A small harness for the integration tests: herds on free ports, clients, TAP output.

Each test file builds herds from generated configs, talks to them over TCP as a
client would, and prints TAP (one "ok"/"not ok" line per test), which meson reads.
Synchronization is by polling with a deadline, never by sleeping a fixed time.
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

# The herd of the original assignment.
ORIGINAL_LINKS = {
    "Goloman": ["Hands", "Holiday", "Wilkes"],
    "Hands": ["Wilkes"],
    "Holiday": ["Welsh", "Wilkes"],
    "Welsh": [],
    "Wilkes": [],
}

AT_LINE = re.compile(r"^AT (\S+) ([+-]\d+\.\d{9}) (\S+) (\S+) (\S+)$")

# Directories the tests of this file made; Tap.finish removes them, or keeps them on failure.
scratch_dirs = []


def scratch_dir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    scratch_dirs.append(path)
    return path


def ephemeral_ports():
    """The range the kernel takes local ports of outgoing connections from."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = map(int, f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_ports(n):
    """n ports free now, below the ephemeral range: between this call and a server's bind,
    an outgoing connection (a peer dialing a neighbor that is not up yet, a client, another
    test run) can take any ephemeral port, and the server would find it in use."""
    low = ephemeral_ports()[0]
    candidates = list(range(10000, low)) if low > 11000 else list(range(low - 1000, low))
    random.shuffle(candidates)
    sockets = []
    for port in candidates:
        if len(sockets) == n:
            break
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            sockets.append(s)
        except OSError:
            s.close()
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    assert len(ports) == n, f"only {len(ports)} free ports below {low}"
    return ports


def wait_until(predicate, timeout=10.0, what="condition"):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def exchange(port, data, timeout=10.0, half_close=True):
    """Connects, writes `data`, half-closes, reads to EOF: what a grader does."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data.encode() if isinstance(data, str) else data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def now():
    return f"{time.time_ns() // 10**9}.{time.time_ns() % 10**9:09d}"


def split_whatsat(reply):
    """A WHATSAT reply is the AT line, the JSON, and one empty line."""
    assert reply.endswith("\n\n"), f"reply does not end with an empty line: {reply[-40:]!r}"
    at_line, _, body = reply.partition("\n")
    assert "\n\n" not in body[:-2], "empty line inside the JSON"
    return at_line, json.loads(body)


class Herd:
    """Servers from a generated herd.toml on free ports, each a child process."""

    # The key of a server's table that its neighbors dial: see peer_port().
    DIAL_KEY = "peer_port"

    def __init__(self, binary, links=None, places=None, extra_env=None, threads=None, extra_toml="",
                 tls_herdctl=None, log_level=None, preexec=None):
        """tls_herdctl: the herdctl program; given, the herd runs with [tls] and a tls_port per
        server, certificates made by `herdctl certs` in DIR/certs."""
        self.binary = binary
        self.preexec = preexec or {}  # server name -> preexec_fn (a descriptor limit, say)
        self.links = links or ORIGINAL_LINKS
        self.dir = scratch_dir("herd-test-")
        self.names = list(self.links)
        n = len(self.names)
        ports = free_ports(3 * n)
        self.ports = dict(zip(self.names, ports))
        self.peer_ports = dict(zip(self.names, ports[n:2 * n]))
        self.tls_ports = dict(zip(self.names, ports[2 * n:])) if tls_herdctl else {}
        self.certs = os.path.join(self.dir, "certs")
        self.procs = {}
        self.env = dict(os.environ, **(extra_env or {}))
        # HERD_TEST_THREADS=N starts every server of the tests with --threads N (the
        # ThreadSanitizer build runs the suites so: tools/dev tsan); a test's own value wins.
        self.threads = threads or int(os.environ.get("HERD_TEST_THREADS") or 0) or None
        # The gazetteer loads after the server listens; a WHATSAT right after start waits for it,
        # and on a busy machine (five servers loading at once, TSan) longer than the default 3 s.
        geonames = '[places]\nprovider = "geonames"\ntimeout_ms = 60000\n'
        self.head = (places or geonames) + extra_toml + '\n[log]\ndir = "logs"\n'
        if log_level:
            self.head += f'level = "{log_level}"\n'
        if tls_herdctl:
            self.head += '\n[tls]\nca = "certs/ca.pem"\ncert = "certs/{name}.pem"\nkey = "certs/{name}.key"\n'
        # What one server's config says of another that the others' does not: {viewer: {server: {key: value}}}.
        self.views = {}
        self.config = os.path.join(self.dir, "herd.toml")
        self.write_config(self.config)
        if tls_herdctl:
            subprocess.run([tls_herdctl, "--config", self.config, "certs"], check=True,
                           stdout=subprocess.DEVNULL, timeout=30)

    def write_config(self, path, overrides=None):
        """Writes the herd's config to `path`, with `overrides` ({server: {key: value}})
        replacing or adding keys in the servers' tables."""
        with open(path, "w") as f:
            f.write(self.head)
            for name, talks in self.links.items():
                keys = {"port": self.ports[name], "peer_port": self.peer_ports[name]}
                if self.tls_ports:
                    keys["tls_port"] = self.tls_ports[name]
                keys["talks_with"] = talks
                keys.update((overrides or {}).get(name, {}))
                f.write(f"\n[servers.{name}]\n")
                for key, value in keys.items():
                    f.write(f"{key} = {json.dumps(value)}\n")  # TOML reads JSON's ints, strings, lists

    def peer_port(self, name):
        """The port `name`'s neighbors dial: a proxy in between forwards there."""
        return self.peer_ports[name]

    def dial_via(self, dialer, server, port):
        """From now on `dialer` starts with a config of its own in which `server` is reached
        at `port` (on 127.0.0.1): a proxy's, say. Of two neighbors, the one whose name sorts
        first redials; `server` dials once when it starts, and is given a port where nothing
        listens for `dialer`, so that the link always runs through the proxy."""
        assert dialer < server, f"{server} dials {dialer}, not the other way round"
        self.views.setdefault(dialer, {}).setdefault(server, {})[self.DIAL_KEY] = port
        self.write_config(self.config_of(dialer), self.views[dialer])
        self.views.setdefault(server, {}).setdefault(dialer, {})[self.DIAL_KEY] = free_ports(1)[0]
        self.write_config(self.config_of(server), self.views[server])

    def config_of(self, name):
        if name not in self.views:
            return self.config
        return os.path.join(self.dir, f"herd-{name}.toml")  # beside herd.toml: logs/ is shared

    def start(self, *names, wait=True):
        """Starts the servers, and unless `wait` is False waits until each listens."""
        for name in names or self.names:
            args = [self.binary, "--config", self.config_of(name), name]
            if self.threads:
                args[1:1] = ["--threads", str(self.threads)]
            out = open(os.path.join(self.dir, f"{name}.out"), "w")
            self.procs[name] = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                                preexec_fn=self.preexec.get(name))
        if not wait:
            return self
        try:
            for name in names or self.names:
                wait_until(lambda: self.listening(name) or self.exited(name), 15, f"{name} to listen")
                assert self.listening(name), f"{name} exited: {self.output(name)}"
        except BaseException:
            self.stop()  # tests call start() before their try/finally: leave no server behind
            raise
        return self

    def listening(self, name):
        try:
            socket.create_connection(("127.0.0.1", self.ports[name]), timeout=1).close()
            return True
        except OSError:
            return False

    def exited(self, name):
        return self.procs[name].poll() is not None

    def output(self, name):
        with open(os.path.join(self.dir, f"{name}.out")) as f:
            return f.read()

    def log(self, name):
        path = os.path.join(self.dir, "logs", f"{name}.log")
        return open(path, errors="replace").read() if os.path.exists(path) else ""

    def kill(self, name, sig=signal.SIGKILL):
        self.procs[name].send_signal(sig)
        return self.procs[name].wait(timeout=10)

    def send(self, name, *lines, **kw):
        return exchange(self.ports[name], "".join(line + "\n" for line in lines), **kw)

    def linked(self, a, b):
        """Whether the log of `a` shows its link to `b` up right now."""
        log = self.log(a)
        up = log.rfind(f"peer {b} - link up")
        down = log.rfind(f"peer {b} - link down")
        return up > down

    def wait_linked(self, timeout=10):
        for a, talks in self.links.items():
            for b in talks:
                wait_until(lambda: self.linked(a, b) and self.linked(b, a), timeout, f"link {a}-{b}")

    def wait_steady(self, a, b, quiet=1.0, timeout=10):
        """Waits until the link between `a` and `b` is up both ways and `a`'s log has shown no
        event of it for `quiet` seconds: when both start at once their dials cross, and the
        link can go down and up again in the first fraction of a second (more under TSan)."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while True:
            events = self.log(a).count(f"peer {b} - ")
            if events != last:
                last, since = events, time.monotonic()
            elif time.monotonic() - since >= quiet and self.linked(a, b) and self.linked(b, a):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the link {a}-{b} did not settle within {timeout} s")
            time.sleep(0.05)

    def stop(self):
        for name, proc in self.procs.items():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Skip(Exception):
    """Raised by a test that this machine cannot run; Tap reports it as skipped, with why."""


class Tap:
    """Runs test functions and prints TAP; exits non-zero if any failed."""

    def __init__(self):
        self.count = 0
        self.failed = 0

    def run(self, name, fn, *args, todo=None):
        """With `todo` (why), the test is expected to fail for now: TAP's TODO directive, so
        that meson takes its failure as expected and reports it as an unexpected pass once it
        passes (the moment to drop the mark)."""
        self.count += 1
        started = time.monotonic()
        directive = f" # TODO {todo}" if todo else ""
        try:
            fn(*args)
            print(f"ok {self.count} - {name} ({time.monotonic() - started:.2f} s){directive}", flush=True)
        except Skip as why:
            print(f"ok {self.count} - {name} # SKIP {why}", flush=True)
        except Exception:
            if not todo:
                self.failed += 1
            print(f"not ok {self.count} - {name}{directive}", flush=True)
            for line in traceback.format_exc().splitlines():
                print(f"# {line}", flush=True)
            # meson prints a failed test's stderr, not its TAP stream: CI's output says why
            print(f"not ok {self.count} - {name}{directive}\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)

    def finish(self):
        print(f"1..{self.count}", flush=True)
        for path in scratch_dirs:
            if self.failed:
                print(f"# kept for inspection: {path}", flush=True)
            else:
                shutil.rmtree(path, ignore_errors=True)
        sys.exit(1 if self.failed else 0)


def binary_arg(name):
    """The path given as --NAME PATH on the command line."""
    flag = f"--{name}"
    if flag in sys.argv:
        return sys.argv[sys.argv.index(flag) + 1]
    raise SystemExit(f"usage: {sys.argv[0]} {flag} PATH")
