"""HAProxy in front of the herd: docs/deploy.md's configuration, a server killed and one hung under client traffic."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import tomllib
from collections import Counter

from herdtest import AT_LINE, Herd, Tap, binary_arg, free_ports, now, scratch_dir, split_whatsat, wait_until

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOCS = os.path.join(ROOT, "docs", "deploy.md")
REPO_CONFIG = os.path.join(ROOT, "herd.toml")
DOCS_BIND = "bind :12100\n"  # the frontend's address in the docs

# What Debian's /etc/haproxy/haproxy.cfg has around the docs' sections, minus syslog, the
# chroot and the user: the docs' frontend and backend must work after Debian's defaults.
HEADER = """global
    stats socket {socket} mode 600 level admin
    log stdout format raw local0

defaults
    log global
    mode http
    option httplog
    option dontlognull
    timeout connect 5000
    timeout client 50000
    timeout server 50000

"""

KILLED = "Goloman"  # the server with the most neighbors: three of them answer 503 once it is gone
HUNG = "Welsh"  # stopped with SIGSTOP: it accepts connections and answers nothing
CLIENTS = 10
IN_FLIGHT = 4  # requests each client keeps sent and unanswered
RATE = 100  # IAMATs a second per client: a steady load, far from what the herd can take
RECONNECT_DELAY = 0.05  # what a client waits before it connects again
REPLY_TIMEOUT = 10  # a client that waits longer for a reply gives up: the test fails


def docs_config():
    """The ```haproxy block of docs/deploy.md's "HAProxy in front"."""
    text = open(DOCS).read()
    section = text[text.index("## HAProxy in front"):]
    found = re.search(r"^```haproxy\n(.*?)^```", section, re.S | re.M)
    assert found, "no ```haproxy block in docs/deploy.md's HAProxy in front"
    return found.group(1)


def haproxy_config(herd, metrics_ports, front_port):
    """The docs' configuration with the test herd's ports in place of the repository's, after
    HEADER (its stats socket still "{socket}")."""
    config = docs_config()
    with open(REPO_CONFIG, "rb") as f:
        repo = tomllib.load(f)["servers"]
    assert sorted(repo) == sorted(herd.names), (sorted(repo), herd.names)
    for name, table in repo.items():
        line = f"server {name} 127.0.0.1:{table['port']} port {table['metrics_port']}\n"
        assert config.count(line) == 1, f"docs/deploy.md has no line {line!r}"
        config = config.replace(line, f"server {name} 127.0.0.1:{herd.ports[name]} port {metrics_ports[name]}\n")
    assert config.count(DOCS_BIND) == 1, f"docs/deploy.md has no line {DOCS_BIND!r}"
    config = config.replace(DOCS_BIND, f"bind 127.0.0.1:{front_port}\n")
    return HEADER + config


class HAProxy:
    """haproxy in the foreground (-db), a child of the test, with its stats socket in a scratch dir."""

    def __init__(self, config_text):
        self.program = shutil.which("haproxy", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        assert self.program, "haproxy not found: `tools/dev setup` installs the Debian package"
        self.dir = scratch_dir("herd-haproxy-")
        self.socket = os.path.join(self.dir, "admin.sock")
        self.config = os.path.join(self.dir, "haproxy.cfg")
        with open(self.config, "w") as f:
            f.write(config_text.replace("{socket}", self.socket))
        self.proc = None

    def version(self):
        out = subprocess.run([self.program, "-v"], capture_output=True, text=True, timeout=10).stdout
        return out.split("\n")[0]

    def check(self):
        """haproxy -c: the configuration is valid, and draws no warning."""
        result = subprocess.run([self.program, "-c", "-f", self.config], capture_output=True, text=True, timeout=10)
        assert result.returncode == 0 and "WARNING" not in result.stdout + result.stderr, result
        return self

    def start(self):
        out = open(os.path.join(self.dir, "haproxy.out"), "w")
        self.proc = subprocess.Popen([self.program, "-db", "-f", self.config], stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: os.path.exists(self.socket) or self.proc.poll() is not None, 10, "haproxy's stats socket")
        assert self.proc.poll() is None, open(os.path.join(self.dir, "haproxy.out")).read()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def command(self, line):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.socket)
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self):
        """The backend's servers as `show stat` has them: {name: {field: value}}."""
        lines = self.command("show stat").splitlines()
        fields = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(fields, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r["pxname"] == "herd" and r["svname"] not in ("FRONTEND", "BACKEND")}

    def sessions(self):
        """{client's port: server} from the log's tcplog lines, one per connection ended."""
        with open(os.path.join(self.dir, "haproxy.out")) as f:
            return {int(m[1]): m[2] for m in re.finditer(r"^127\.0\.0\.1:(\d+) \[[^]]*\] herd herd/(\S+) ", f.read(), re.M)}

    def status(self, name):
        return self.servers()[name]["status"]


class Request:
    def __init__(self, client, phase):
        self.client = client  # the client name in the IAMAT, used once
        self.time = now()
        self.line = f"IAMAT {client} +34.068930-118.445127 {self.time}\n".encode()
        self.phase = phase
        self.sends = 0
        self.server = None  # who answered


class Client(threading.Thread):
    """What a real client does: IAMATs on one connection through HAProxy, IN_FLIGHT at a time;
    when the connection breaks, reconnect and send again what was not answered."""

    def __init__(self, index, port, phase):
        super().__init__(daemon=True)
        self.index, self.port, self.phase = index, port, phase
        self.stopping = threading.Event()
        self.paused = threading.Event()  # no new requests, the connection kept
        self.outstanding = []
        self.requests = []
        self.resend = []
        self.broken = []  # (server that answered on the connection or None, requests unanswered, local port)
        self.server = None  # who answers on the current connection
        self.error = None

    def run(self):
        try:
            while not (self.stopping.is_set() and not self.resend):
                self.connection()
        except Exception as e:  # reported by the test's checks
            self.error = e

    def connection(self):
        self.outstanding = outstanding = []
        buffer = b""
        self.server = None
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=REPLY_TIMEOUT)
        local_port = sock.getsockname()[1]
        next_send = time.monotonic()
        try:
            while True:
                while len(outstanding) < IN_FLIGHT and (self.resend or (not self.paused.is_set()
                                                                         and time.monotonic() >= next_send)):
                    request = self.resend.pop(0) if self.resend else self.new_request()
                    if request.sends == 0:
                        next_send += 1 / RATE
                    request.sends += 1
                    outstanding.append(request)
                    sock.sendall(request.line)
                if not outstanding:
                    if self.stopping.is_set():
                        return
                    if self.paused.is_set():
                        next_send = time.monotonic() + 0.01
                    time.sleep(max(0.0, min(next_send - time.monotonic(), 0.01)))
                    continue
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionResetError("closed")
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    request = outstanding.pop(0)
                    match = AT_LINE.match(line.decode())
                    assert match and match[3] == request.client, (line, request.line)
                    request.server = match[1]
                    self.server = match[1]
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            self.broken.append((self.server, len(outstanding), local_port))
            self.resend = outstanding + self.resend
            time.sleep(RECONNECT_DELAY)
        finally:
            sock.close()

    def new_request(self):
        request = Request(f"c{self.index}-{len(self.requests)}.example", self.phase())
        self.requests.append(request)
        return request


def known_to(herd, name, requests):
    """The requests whose IAMAT `name` has stored (WHATSAT, pipelined on one connection)."""
    reply = herd.send(name, *(f"WHATSAT {r.client} 1 0" for r in requests), timeout=30)
    known = []
    for request in requests:
        if reply.startswith("? "):
            _, _, reply = reply.partition("\n")
            continue
        answer, _, reply = reply.partition("\n\n")
        at_line, _ = split_whatsat(answer + "\n\n")
        if AT_LINE.match(at_line)[5] == request.time:
            known.append(request)
    assert reply == "", reply[:200]
    return known


def view(haproxy):
    """HAProxy's view of each server, one TAP comment each."""
    for name, row in haproxy.servers().items():
        print(f"#   {name:8} {row['status']:6} check {row['check_status']}/{row['check_code'] or '-'}"
              f"  sessions now {row['scur']}, total {row['stot']}; connections refused and redispatched"
              f" {row['wredis']}", flush=True)


def phase_summary(label, requests):
    answered = [r for r in requests if r.server]
    by = Counter(r.server for r in answered)
    resent = sum(1 for r in requests if r.sends > 1)
    print(f"# {label}: sent {len(requests)} IAMATs, answered {len(answered)}, resent after a broken"
          f" connection {resent}, failed {len(requests) - len(answered)}; answered by "
          + ", ".join(f"{name} {n}" for name, n in sorted(by.items())), flush=True)


class Traffic:
    """CLIENTS clients through haproxy; each request is labelled with the phase it was first sent in."""

    def __init__(self, port, phase):
        self.phase = phase
        self.clients = [Client(i, port, lambda: self.phase) for i in range(CLIENTS)]
        for client in self.clients:
            client.start()
        wait_until(lambda: all(c.server for c in self.clients), 10, "every client answered")

    def pause(self):
        """No new requests; what was sent is answered; the connections stay open."""
        for client in self.clients:
            client.paused.set()
        wait_until(lambda: all(not c.outstanding and not c.resend for c in self.clients), REPLY_TIMEOUT,
                   "the clients' requests answered")

    def on(self, name):
        return [c for c in self.clients if c.server == name]

    def stop(self):
        for client in self.clients:
            client.paused.set()
            client.stopping.set()
        for client in self.clients:
            client.join(15)
            assert not client.is_alive(), f"client {client.index} still running"
            assert client.error is None, f"client {client.index}: {client.error!r}"
        return [r for c in self.clients for r in c.requests]

    def check_broken(self, haproxy, on_server, on_server_clients):
        """Checks that only the connections of `on_server`'s clients broke, once each, with at
        most what was in flight on them unanswered, all of it answered once sent again."""
        broken = [(c, *b) for c in self.clients for b in c.broken]
        assert broken, f"no connection to {on_server} broke"

        def logged_all():  # which server each broken connection went to, as haproxy logged it when it ended
            logged = haproxy.sessions()
            return logged if all(port in logged for *_, port in broken) else None
        went_to = wait_until(logged_all, 5, "haproxy to log the broken connections")
        print(f"# client connections broken: {len(broken)}; requests unanswered on each: "
              + ", ".join(f"{lost} (on {went_to[port]})" for _, _, lost, port in broken), flush=True)
        assert all(went_to[port] == on_server and answered in (on_server, None)
                   for _, answered, _, port in broken), broken
        # Once: a client that reconnects while haproxy still has the server up (leastconn picks
        # it, having no connection) is refused there and passed on (retries, option redispatch).
        assert sorted(c.index for c in on_server_clients) == sorted(c.index for c, *_ in broken), broken
        assert all(lost <= IN_FLIGHT for _, _, lost, _ in broken), broken
        requests = [r for c in self.clients for r in c.requests]
        assert all(r.server for r in requests), "a request went unanswered"
        assert len([r for r in requests if r.sends > 1]) <= sum(lost for _, _, lost, _ in broken), broken


def behind_haproxy(server):
    """The original five-server herd with metrics ports, and haproxy in front of it with the
    docs' configuration; both running, every server up in haproxy's view."""
    herd = Herd(server)
    metrics_ports = dict(zip(herd.names, free_ports(len(herd.names))))
    herd.write_config(herd.config, {name: {"metrics_port": port} for name, port in metrics_ports.items()})
    front_port = free_ports(1)[0]
    haproxy = HAProxy(haproxy_config(herd, metrics_ports, front_port)).check()
    herd.start()
    try:
        herd.wait_linked()
        haproxy.start()
        wait_until(lambda: all(r["status"] == "UP" and r["check_status"] == "L7OK"
                               for r in haproxy.servers().values()), 10, "haproxy to see every server up")
    except BaseException:
        haproxy.stop()
        herd.stop()
        raise
    return herd, haproxy, front_port


def known_everywhere(herd, requests, names):
    started = time.monotonic()
    for name in names:
        wait_until(lambda: len(known_to(herd, name, requests)) == len(requests), 10,
                   f"{name} to know every answered IAMAT")
    return time.monotonic() - started


def failover(herd, haproxy, front_port):
    traffic = None
    try:
        traffic = Traffic(front_port, "before")
        time.sleep(1.0)  # traffic before the kill

        on_killed = traffic.on(KILLED)
        assert on_killed, f"no client connection went to {KILLED}"
        traffic.phase = "killed"
        killed_at = time.monotonic()
        herd.kill(KILLED)
        wait_until(lambda: haproxy.status(KILLED) == "DOWN", 10, f"haproxy to mark {KILLED} down")
        traffic.phase = "down"
        print(f"# killed {KILLED} (SIGKILL) under traffic, {len(on_killed)} of {CLIENTS} client connections on it;"
              f" haproxy marked it DOWN {time.monotonic() - killed_at:.1f} s later", flush=True)
        neighbors = [n for n in herd.names if KILLED in herd.links[n] or n in herd.links[KILLED]]
        wait_until(lambda: all(haproxy.servers()[n]["check_code"] == "503" for n in neighbors), 10,
                   f"{KILLED}'s neighbors to answer /healthz 503")
        rows = haproxy.servers()
        assert all(rows[n]["status"] == "UP" for n in herd.names if n != KILLED), \
            {n: (r["status"], r["check_code"]) for n, r in rows.items()}
        print(f"# haproxy's view once {', '.join(neighbors)} answer 503 (show stat):", flush=True)
        view(haproxy)
        time.sleep(1.5)  # traffic after the kill

        # Back: haproxy puts it in rotation again, and a new client is passed to it (leastconn:
        # it is the server with no connection; the others keep theirs, idle).
        traffic.pause()
        restarted_at = time.monotonic()
        herd.start(KILLED)
        wait_until(lambda: haproxy.status(KILLED) == "UP", 10, f"haproxy to mark {KILLED} up")
        up_after = time.monotonic() - restarted_at
        newcomer = exchange_via(front_port, f"IAMAT newcomer.example +34.068930-118.445127 {now()}\n")
        assert newcomer.startswith(f"AT {KILLED} "), newcomer
        print(f"# {KILLED} restarted: haproxy marked it UP {up_after:.1f} s later, and passed it the next new"
              " client connection", flush=True)
        requests = traffic.stop()

        phase_summary("before the kill", [r for r in requests if r.phase == "before"])
        phase_summary(f"from the kill to {KILLED} marked DOWN", [r for r in requests if r.phase == "killed"])
        phase_summary(f"once {KILLED} marked DOWN", [r for r in requests if r.phase == "down"])
        # Clients kept being answered: only connections to the killed server broke, and what was
        # unanswered on them was answered once sent again.
        traffic.check_broken(haproxy, KILLED, on_killed)
        # Its neighbors, answering /healthz 503 (their link to it down), stayed in rotation.
        answered_after = Counter(r.server for r in requests if r.phase == "down")
        assert set(answered_after) == set(herd.names) - {KILLED}, answered_after

        # Every IAMAT a client had an answer for is known to every server, the restarted one included.
        took = known_everywhere(herd, requests, herd.names)
        print(f"# every answered IAMAT ({len(requests)}) is known to every server, {KILLED} (caught up) included"
              f" (WHATSAT on each, {took:.1f} s); haproxy's view at the end:", flush=True)
        view(haproxy)
    finally:
        if traffic:
            for client in traffic.clients:
                client.stopping.set()


def hung(herd, haproxy, front_port):
    traffic = None
    try:
        herd.wait_linked()
        wait_until(lambda: all(r["status"] == "UP" for r in haproxy.servers().values()), 10, "every server up")
        traffic = Traffic(front_port, "before")
        time.sleep(0.5)
        on_hung = traffic.on(HUNG)
        assert on_hung, f"no client connection went to {HUNG}"
        traffic.phase = "stopped"
        herd.procs[HUNG].send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            wait_until(lambda: haproxy.status(HUNG) == "DOWN", 10, f"haproxy to mark {HUNG} down")
            down_after = time.monotonic() - stopped_at
            wait_until(lambda: all(c.broken for c in on_hung), 5, f"the connections to {HUNG} closed")
            print(f"# stopped {HUNG} (SIGSTOP) under traffic, {len(on_hung)} of {CLIENTS} client connections on it;"
                  f" haproxy marked it DOWN {down_after:.1f} s later (check {haproxy.servers()[HUNG]['check_status']})"
                  f" and closed them {time.monotonic() - stopped_at:.1f} s after the stop", flush=True)
            time.sleep(0.5)
        finally:
            herd.procs[HUNG].send_signal(signal.SIGCONT)
        requests = traffic.stop()
        wait_until(lambda: haproxy.status(HUNG) == "UP", 10, f"haproxy to mark {HUNG} up")
        phase_summary("before the stop", [r for r in requests if r.phase == "before"])
        phase_summary(f"after the stop, to {HUNG}'s SIGCONT", [r for r in requests if r.phase == "stopped"])
        traffic.check_broken(haproxy, HUNG, on_hung)
        took = known_everywhere(herd, requests, herd.names)
        print(f"# every answered IAMAT ({len(requests)}) is known to every server (WHATSAT on each, {took:.1f} s)",
              flush=True)
    finally:
        if traffic:
            for client in traffic.clients:
                client.stopping.set()
        if herd.procs[HUNG].poll() is None:
            herd.procs[HUNG].send_signal(signal.SIGCONT)


def exchange_via(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data.encode())
        s.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: s.recv(65536), b"")).decode()


def main():
    server = binary_arg("server")
    tap = Tap()
    running = []

    def start():
        running.extend(behind_haproxy(server))
        print(f"# {running[1].version()}; docs/deploy.md's configuration in front of {', '.join(running[0].names)}",
              flush=True)
    try:
        tap.run("docs/deploy.md's HAProxy configuration: valid, no warning, every server of the herd up", start)
        if running:
            tap.run("HAProxy in front: a server killed under traffic, clients keep being answered", failover, *running)
            tap.run("HAProxy in front: a hung server is taken out and its clients' connections closed", hung, *running)
    finally:
        if running:
            running[1].stop()
            running[0].stop()
    tap.finish()


if __name__ == "__main__":
    main()
