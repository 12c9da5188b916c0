"""Clients that abuse a server: silent, slow (slowloris), too many, or never reading their
replies. The server closes them or stops them, keeps serving the others, and keeps its memory
bounded (read from /proc/PID/status)."""

import os
import resource
import socket
import threading
import time

from herdtest import Herd, Skip, Tap, binary_arg, now, wait_until

UCLA = "+34.068930-118.445127"


def skip_under_sanitizers(pid):
    """A sanitizer's shadow memory and quarantine are in the RSS too: not the server's own."""
    with open(f"/proc/{pid}/maps") as f:
        if any(lib in line for line in f for lib in ("libasan", "libtsan", "libubsan")):
            raise Skip("a sanitizer build: its RSS is not the server's")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def settled_rss_kb(pid, deadline_s=10):
    """RSS once two readings 0.3 s apart agree (or at the deadline)."""
    last, deadline = rss_kb(pid), time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now_kb = rss_kb(pid)
        if abs(now_kb - last) < 64:
            return now_kb
        last = now_kb
    return last


def unread_bytes(port):
    """Bytes the kernel holds for the server's connections on `port` that it has not read."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, queues = fields[1], fields[4]
                    if int(local.split(":")[1], 16) == port:
                        total += int(queues.split(":")[1], 16)
        except OSError:
            pass
    return total


def room_for(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))


def solo(server, clients_toml, **kw):
    return Herd(server, links={"Solo": []}, extra_toml=f"\n[clients]\n{clients_toml}\n", **kw).start()


def closed_by_server(s, timeout):
    """Whether the server closes `s` within `timeout` seconds (EOF or reset)."""
    s.settimeout(timeout)
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def idle_and_slow_clients_are_closed(server):
    """A client that says nothing, and one that says a line a byte at a time, are closed after
    clients.idle_timeout_ms; one that completes lines is kept."""
    herd = solo(server, "idle_timeout_ms = 500")
    port = herd.ports["Solo"]
    try:
        silent = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        active = socket.create_connection(("127.0.0.1", port), timeout=10)
        slow_closed = None
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # four idle timeouts
            try:
                slow.sendall(b"I")  # never a newline
            except OSError:
                slow_closed = slow_closed or time.monotonic()
            active.sendall(f"IAMAT active.example {UCLA} {now()}\n".encode())
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = active.recv(4096)
                assert chunk, "the active client was closed"
                reply += chunk
            assert reply.startswith(b"AT Solo "), reply
            time.sleep(0.1)
        assert closed_by_server(silent, 5), "the silent client is still open"
        assert slow_closed or closed_by_server(slow, 5), "the slowloris client is still open"
        log = herd.log("Solo")
        assert log.count("completed no line for 500 ms; disconnecting") == 2, log[-2000:]
        for s in (silent, slow, active):
            s.close()
    finally:
        herd.stop()


def rss_per_connection(herd, connections, more, send=b""):
    """RSS added by `more` connections (each sending `send`), in bytes each. Measured from
    connections already open, so that memory freed earlier and reused does not count."""
    pid, port = herd.procs["Solo"].pid, herd.ports["Solo"]
    base = settled_rss_kb(pid)
    for _ in range(more):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(send)
        connections.append(s)
    accepted = len(connections)
    wait_until(lambda: herd.log("Solo").count("connected from") >= accepted, 30, "the connections")
    wait_until(lambda: unread_bytes(port) == 0, 30, "the server to read every byte")
    return (settled_rss_kb(pid) - base) * 1024 / more


def idle_connections_hold_little_memory(server):
    """2,000 silent connections take at most 4 KB each; 300 holding 60,000 bytes of an
    unfinished line take about that, not a 64 KiB buffer more."""
    room_for(3000)
    herd = solo(server, "idle_timeout_ms = 600000")
    connections = []
    try:
        skip_under_sanitizers(herd.procs["Solo"].pid)
        rss_per_connection(herd, connections, 500)
        idle = rss_per_connection(herd, connections, 2000)
        print(f"# {idle:.0f} bytes of RSS per idle connection", flush=True)
        assert idle <= 4096, f"{idle:.0f} bytes per idle connection"
        rss_per_connection(herd, connections, 100, b"x" * 60_000)
        partial = rss_per_connection(herd, connections, 300, b"x" * 60_000)
        print(f"# {partial:.0f} bytes of RSS per connection holding 60,000 bytes", flush=True)
        assert partial <= 60_000 * 1.25 + 4096, f"{partial:.0f} bytes per connection"
    finally:
        for s in connections:
            s.close()
        herd.stop()


def descriptor_limit(n):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def out_of_descriptors(server):
    """Alpha may open 128 descriptors and 300 clients come: it pauses accepting (logged once),
    serves the clients it has, still dials its neighbor, and resumes by itself."""
    room_for(400)
    herd = Herd(server, links={"Alpha": ["Beta"], "Beta": []},
                preexec={"Alpha": descriptor_limit(128)}).start()
    port = herd.ports["Alpha"]
    flood = []
    try:
        herd.wait_linked()
        first = socket.create_connection(("127.0.0.1", port), timeout=10)
        for _ in range(300):  # the backlog takes what Alpha does not accept
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        wait_until(lambda: "accept paused" in herd.log("Alpha"), 10, "accepting to pause")
        time.sleep(1)  # a second of trying to accept
        first.sendall(f"IAMAT first.example {UCLA} {now()}\n".encode())
        assert first.recv(4096).startswith(b"AT Alpha "), "a client already accepted is not served"
        # The neighbor restarts: Alpha, which dials it, needs a descriptor for that.
        herd.kill("Beta")
        wait_until(lambda: not herd.linked("Alpha", "Beta"), 10, "the link to go down")
        herd.start("Beta")
        herd.wait_linked(15)
        for s in flood:
            s.close()
        flood.clear()
        late = socket.create_connection(("127.0.0.1", port), timeout=10)
        late.sendall(f"IAMAT late.example {UCLA} {now()}\n".encode())
        assert late.recv(4096).startswith(b"AT Alpha "), "accepting did not resume"
        late.close()
        log = wait_until(lambda: (lambda l: l if "accept resumed after" in l else None)(herd.log("Alpha")),
                         5, "the resume in the log")
        assert log.count("accept paused") == 1, log.count("accept paused")
        assert "accept failed" not in log
        assert log.count("accept resumed after") == 1, log.count("accept resumed after")
        first.close()
    finally:
        for s in flood:
            s.close()
        herd.stop()


def unread_replies_are_capped_and_memory_returns(server):
    """Clients that pipeline WHATSATs and read none of the replies are paced, then
    disconnected at clients.max_output_bytes (here smaller than one reply) or at the send
    timeout, each logged once; RSS stays bounded, and 5 s after they have all closed it is
    back within 64 MiB of where it started."""
    clients, sent = 100, 200 * 1024
    room_for(clients + 50)
    herd = solo(server, "max_output_bytes = 4096\nsend_timeout_ms = 2000")
    pid, port = herd.procs["Solo"].pid, herd.ports["Solo"]
    connections = []
    try:
        skip_under_sanitizers(pid)
        herd.send("Solo", f"IAMAT loud.example {UCLA} {now()}")
        base = settled_rss_kb(pid)
        request = b"WHATSAT loud.example 50 20\n"
        payload = request * (sent // len(request))
        peak = [base]
        done = threading.Event()

        def watch():
            while not done.is_set():
                try:
                    peak[0] = max(peak[0], rss_kb(pid))
                except (OSError, AssertionError):
                    return
                time.sleep(0.02)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()

        def pipeline(s):
            try:
                s.sendall(payload)
            except OSError:
                pass  # disconnected

        for _ in range(clients):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(30)
            s.connect(("127.0.0.1", port))
            connections.append(s)
        writers = [threading.Thread(target=pipeline, args=(s,), daemon=True) for s in connections]
        for w in writers:
            w.start()
        wait_until(lambda: herd.log("Solo").count("; disconnecting") >= clients, 60,
                   "every client to be disconnected")
        for w in writers:
            w.join(30)
        for s in connections:
            s.close()
        connections.clear()
        wait_until(lambda: herd.log("Solo").count("disconnected") >= clients + 2, 30, "closes")
        time.sleep(5)
        done.set()
        after = rss_kb(pid)
        print(f"# RSS {base} kB at the start, {peak[0]} kB at the peak, {after} kB 5 s after the "
              f"{clients} clients closed", flush=True)
        assert (peak[0] - base) * 1024 < clients * 1024 * 1024, f"peak {peak[0]} kB from {base} kB"
        assert after - base < 64 * 1024, f"{after} kB from {base} kB"
        log = herd.log("Solo")
        assert log.count("; disconnecting") == clients, "one line per offender"
        assert "over clients.max_output_bytes (4096)" in log
        assert herd.send("Solo", "WHATSAT loud.example 1 1").startswith("AT Solo ")
    finally:
        for s in connections:
            s.close()
        herd.stop()


def pipelining_client_that_reads_is_not_capped(server):
    """Megabytes of WHATSAT replies to one burst of 56 KB, for a client that reads them: paced
    below clients.max_output_bytes (1 MiB), not disconnected."""
    herd = solo(server, "")
    try:
        herd.send("Solo", f"IAMAT burst.example {UCLA} {now()}")
        count = 2000
        with socket.create_connection(("127.0.0.1", herd.ports["Solo"]), timeout=30) as s:
            s.sendall(b"WHATSAT burst.example 50 20\n" * count)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                got += chunk
        replies = got.count(b"\n\n")
        assert replies == count, f"{replies} of {count} replies"
        assert "max_output_bytes" not in herd.log("Solo")
    finally:
        herd.stop()


def main():
    server = binary_arg("server")
    tap = Tap()
    tap.run("silent and slowloris clients are closed after the idle timeout",
            idle_and_slow_clients_are_closed, server)
    tap.run("an idle connection holds at most 4 KB, an unfinished line about its size",
            idle_connections_hold_little_memory, server)
    tap.run("out of descriptors: accepting pauses and resumes, the neighbor is still dialed",
            out_of_descriptors, server)
    tap.run("unread replies are capped, and the memory goes back after the clients close",
            unread_replies_are_capped_and_memory_returns, server)
    tap.run("a client that pipelines megabytes of replies and reads them is paced, not capped",
            pipelining_client_that_reads_is_not_capped, server)
    tap.finish()


if __name__ == "__main__":
    main()
