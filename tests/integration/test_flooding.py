"""Flooding between servers: isolation, restarts, catch-up, neighbors that are down or hung."""

import os
import signal
import socket
import threading
import time

from herdtest import Herd, Tap, binary_arg, now, split_whatsat, wait_until


def record_at(herd, server, client):
    """The AT line `server` holds for `client`, or None."""
    reply = herd.send(server, f"WHATSAT {client} 1 1")
    if reply.startswith("? "):
        return None
    return split_whatsat(reply)[0]


def coords_at(herd, server, client):
    at = record_at(herd, server, client)
    return at.split()[4] if at else None


def isolated_then_restarted(server):
    herd = Herd(server).start()
    try:
        herd.wait_linked()
        herd.send("Goloman", f"IAMAT iso.example +1+1 {now()}")
        for name in herd.names:
            assert coords_at(herd, name, "iso.example") == "+1+1", name

        # Holiday dies: Welsh is cut off from the rest.
        herd.kill("Holiday")
        wait_until(lambda: not herd.linked("Welsh", "Holiday"), 5, "Welsh to notice")
        herd.send("Goloman", f"IAMAT iso.example +2+2 {now()}")
        herd.send("Welsh", f"IAMAT island.example +3+3 {now()}")
        for name in ("Goloman", "Hands", "Wilkes"):
            assert coords_at(herd, name, "iso.example") == "+2+2", name
            assert record_at(herd, name, "island.example") is None, name
        assert coords_at(herd, "Welsh", "iso.example") == "+1+1"  # keeps the old record
        assert coords_at(herd, "Welsh", "island.example") == "+3+3"

        # Holiday comes back empty-handed; the catch-up brings everyone together.
        herd.start("Holiday")
        for name in herd.names:
            wait_until(lambda: coords_at(herd, name, "iso.example") == "+2+2", 10, f"{name} to converge")
            wait_until(lambda: coords_at(herd, name, "island.example") == "+3+3", 10, f"{name} to converge")
        ats = {record_at(herd, name, "island.example") for name in herd.names}
        assert len(ats) == 1 and next(iter(ats)).split()[1] == "Welsh", ats
    finally:
        herd.stop()


def restarted_server_catches_up(server):
    herd = Herd(server).start()
    try:
        herd.wait_linked()
        clients = [f"before{i}.example" for i in range(50)]
        for i, client in enumerate(clients):
            herd.send(herd.names[i % 5], f"IAMAT {client} +{i % 90}-{i} {now()}")
        herd.kill("Goloman")
        herd.start("Goloman")
        for client in clients:
            wait_until(lambda: record_at(herd, "Goloman", client), 10, f"Goloman to learn {client}")
    finally:
        herd.stop()


def neighbors_down_do_not_stop_a_server(server):
    herd = Herd(server)
    try:
        herd.start("Goloman")  # its neighbors are not running
        started = time.monotonic()
        reply = herd.send("Goloman", f"IAMAT alone.example +1+1 {now()}")
        assert reply.startswith("AT Goloman ") and time.monotonic() - started < 5, reply
        wait_until(lambda: "cannot connect to 127.0.0.1" in herd.log("Goloman"), 5, "a logged retry")
        herd.start("Hands")
        wait_until(lambda: coords_at(herd, "Hands", "alone.example") == "+1+1", 10, "Hands to catch up")
        wait_until(lambda: herd.linked("Goloman", "Hands"), 5, "Goloman to log the link")
    finally:
        herd.stop()


def hung_neighbor_does_not_hold_replies(server):
    herd = Herd(server).start()
    try:
        herd.wait_linked()
        herd.procs["Hands"].send_signal(signal.SIGSTOP)
        started = time.monotonic()
        reply = herd.send("Goloman", f"IAMAT hung.example +1+1 {now()}")
        elapsed = time.monotonic() - started
        assert reply.startswith("AT Goloman "), reply
        assert elapsed < 5, elapsed  # not held up until the neighbor wakes
        for name in ("Holiday", "Wilkes", "Welsh"):
            assert coords_at(herd, name, "hung.example") == "+1+1", name
        herd.procs["Hands"].send_signal(signal.SIGCONT)
        wait_until(lambda: coords_at(herd, "Hands", "hung.example") == "+1+1", 10, "Hands to catch up")
    finally:
        herd.stop()


def sigterm_exits_zero(server):
    herd = Herd(server).start()
    try:
        herd.wait_linked()
        herd.send("Wilkes", f"IAMAT term.example +1+1 {now()}")
        for name in herd.names:
            assert herd.kill(name, signal.SIGTERM) == 0, (name, herd.output(name))
            assert "stopped" in herd.log(name).splitlines()[-1], herd.log(name)[-200:]
        assert "< IAMAT term.example" in herd.log("Wilkes")
    finally:
        herd.stop()


def sighup_reopens_the_log(server):
    herd = Herd(server, links={"Solo": []}).start()
    try:
        herd.send("Solo", f"IAMAT before.example +1+1 {now()}")
        logs = os.path.join(herd.dir, "logs")
        os.rename(os.path.join(logs, "Solo.log"), os.path.join(logs, "Solo.log.1"))
        herd.procs["Solo"].send_signal(signal.SIGHUP)
        wait_until(lambda: "log file reopened" in herd.log("Solo"), 10, "a new log file")
        herd.send("Solo", f"IAMAT after.example +1+1 {now()}")
        assert herd.kill("Solo", signal.SIGTERM) == 0, herd.output("Solo")
        with open(os.path.join(logs, "Solo.log.1")) as f:
            old = f.read()
        new = herd.log("Solo")
        assert "< IAMAT before.example" in old and "SIGHUP received" in old, old[-300:]
        assert "after.example" not in old, old[-300:]
        assert "< IAMAT after.example" in new and "> AT Solo" in new, new
        assert "stopped" in new.splitlines()[-1], new[-200:]
    finally:
        herd.stop()


def two_threads(server):
    herd = Herd(server, threads=2).start()
    try:
        herd.wait_linked()
        for i in range(20):
            at = herd.send("Hands", f"IAMAT thread{i}.example +1+1 {now()}").strip()
            assert record_at(herd, "Welsh", f"thread{i}.example") == at
    finally:
        herd.stop()


def megabytes_of_iamats_beside_a_hung_neighbor(server):
    """Replies that wait on a hung neighbor, more than 4 MiB of them, still all come back."""
    herd = Herd(server, links={"Alpha": ["Beta"], "Beta": []}).start()
    try:
        herd.wait_linked()
        herd.procs["Beta"].send_signal(signal.SIGSTOP)
        count, padding = 1400, "x" * 4000
        t = now()
        lines = "".join(f"IAMAT c{i:05d}{padding} +1+1 {t}\n" for i in range(count)).encode()
        s = socket.create_connection(("127.0.0.1", herd.ports["Alpha"]), timeout=10)
        writer = threading.Thread(target=lambda: s.sendall(lines), daemon=True)
        writer.start()
        replies, deadline = 0, time.monotonic() + 30
        while replies < count and time.monotonic() < deadline:
            chunk = s.recv(65536)
            assert chunk, f"closed after {replies} replies"
            replies += chunk.count(b"\n")
        assert replies == count, f"{replies} of {count} replies within 30 s"
        s.close()
    finally:
        herd.procs["Beta"].send_signal(signal.SIGCONT)
        herd.stop()


def records_far_ahead_from_a_neighbor_are_refused(server):
    """A neighbor's record more than a day ahead is acknowledged, logged, and not stored."""
    herd = Herd(server, links={"Alpha": ["Zulu"], "Zulu": []}).start("Zulu")
    try:
        link = socket.create_connection(("127.0.0.1", herd.peer_ports["Zulu"]), timeout=5)
        ahead = time.time_ns() // 10**9 + 86_400 + 60
        link.sendall(b"PEER Alpha\n"
                     + f"PUT 1 AT Alpha +0.000000000 evil.example +1+1 {ahead}\n".encode()
                     + b"AT Alpha +0.000000000 evil2.example +1+1 999999999999999999\n"
                     + f"PUT 2 AT Alpha +0.000000000 good.example +1+1 {now()}\n".encode())
        answer = b""
        while answer.count(b"\n") < 3:
            chunk = link.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.splitlines()[:3] == [b"PEER Zulu", b"SINCE - 0", b"ACK 1-2"], answer
        for client in ("evil.example", "evil2.example"):
            assert herd.send("Zulu", f"WHATSAT {client} 1 1").startswith("? "), client
        assert herd.send("Zulu", "WHATSAT good.example 1 1").startswith("AT Alpha ")
        wait_until(lambda: herd.log("Zulu").count("refused a record more than 86400000 ms ahead") == 2,
                   5, "one log line for each refused record")
        link.close()
    finally:
        herd.stop()


def plaintext_handshake_cannot_replace_a_live_link(server):
    """While a plaintext link is up, a second "PEER Alpha" is refused and logged; the first link
    keeps working. Once it closes, a new connection becomes the link."""
    herd = Herd(server, links={"Alpha": ["Zulu"], "Zulu": []}).start("Zulu")
    try:
        first = socket.create_connection(("127.0.0.1", herd.peer_ports["Zulu"]), timeout=5)
        first.sendall(b"PEER Alpha\n")
        assert first.recv(64) == b"PEER Zulu\nSINCE - 0\n"  # in one write
        wait_until(lambda: herd.linked("Zulu", "Alpha"), 5, "the first link")
        second = socket.create_connection(("127.0.0.1", herd.peer_ports["Zulu"]), timeout=5)
        second.sendall(b"PEER Alpha\n" + f"PUT 1 AT Alpha +0.000000000 evil.example +1+1 {now()}\n".encode())
        assert second.recv(64) == b"", "the second connection is closed unanswered"
        wait_until(lambda: "refused a plaintext connection from 127.0.0.1:" in herd.log("Zulu"), 5,
                   "the refusal in the log")
        assert herd.send("Zulu", "WHATSAT evil.example 1 1").startswith("? ")
        first.sendall(f"PUT 1 AT Alpha +0.000000000 good.example +1+1 {now()}\n".encode())
        assert first.recv(64) == b"ACK 1\n"
        assert herd.log("Zulu").count("peer Alpha - link up") == 1
        first.close()
        wait_until(lambda: not herd.linked("Zulu", "Alpha"), 5, "the first link to go down")
        third = socket.create_connection(("127.0.0.1", herd.peer_ports["Zulu"]), timeout=5)
        third.sendall(b"PEER Alpha\n")
        wait_until(lambda: herd.log("Zulu").count("peer Alpha - link up") == 2, 5, "a new link")
        second.close()
        third.close()
    finally:
        herd.stop()


def main():
    server = binary_arg("server")
    tap = Tap()
    tap.run("an isolated server keeps the old record; a restart brings convergence", isolated_then_restarted, server)
    tap.run("a restarted server catches up from its neighbors", restarted_server_catches_up, server)
    tap.run("neighbors that are down do not stop a server; it reconnects", neighbors_down_do_not_stop_a_server, server)
    tap.run("a hung neighbor does not hold up IAMAT replies", hung_neighbor_does_not_hold_replies, server)
    tap.run("SIGTERM: every server exits 0 with its log flushed", sigterm_exits_zero, server)
    tap.run("SIGHUP: the log starts a new file once the old one is moved away", sighup_reopens_the_log, server)
    tap.run("with --threads 2 the herd behaves the same", two_threads, server)
    tap.run("megabytes of IAMATs beside a hung neighbor are all answered",
            megabytes_of_iamats_beside_a_hung_neighbor, server)
    tap.run("a plaintext handshake cannot replace a live link",
            plaintext_handshake_cannot_replace_a_live_link, server)
    tap.run("a neighbor's records more than a day ahead are refused",
            records_far_ahead_from_a_neighbor_are_refused, server)
    tap.finish()


if __name__ == "__main__":
    main()
