"""Bounded under abuse: lines too long for a link, records too long to send, logs that could
flood, and a log that cannot be written."""

import os
import re
import resource
import signal
import socket
import time

from herdtest import Herd, Tap, binary_arg, now, wait_until

LINE_LIMIT = 64 * 1024
RECORD_LIMIT = LINE_LIMIT - len("PUT 18446744073709551615 ")  # the longest AT line a link takes


class FakeNeighbor:
    """A neighbor speaking the peer protocol over a raw socket: the handshake, then lines. It
    says it holds nothing of the server's (SINCE - 0), so the server's catch-up sends it all."""

    def __init__(self, herd, server, name):
        self.sock = socket.create_connection(("127.0.0.1", herd.peer_ports[server]), timeout=10)
        self.buffer = b""
        self.send(f"PEER {name}\nSINCE - 0\n")
        assert self.line() == f"PEER {server}"

    def send(self, text):
        self.sock.sendall(text.encode())

    def line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(1 << 16)
            assert chunk, f"the link closed; unread: {self.buffer[:200]!r}"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode()

    def lines_until(self, done, deadline_s=20):
        """Lines read until `done(lines)` holds (within the socket's timeout per read)."""
        lines, deadline = [], time.monotonic() + deadline_s
        while not done(lines):
            assert time.monotonic() < deadline, f"{len(lines)} lines so far: {lines[-3:]}"
            lines.append(self.line())
        return lines

    def close(self):
        self.sock.close()


def acked(lines):
    """The PUT ids the ACK lines among `lines` confirm."""
    ids = set()
    for line in lines:
        if line.startswith("ACK "):
            first, _, last = line[4:].partition("-")
            ids.update(range(int(first), int(last or first) + 1))
    return ids


def a_125_kb_line_from_a_neighbor_is_refused_whole(server):
    """Refused, not stored, logged once; the link stays and a later catch-up completes."""
    herd = Herd(server, links={"Alpha": ["Zulu"], "Zulu": []}).start("Zulu")
    try:
        alpha = FakeNeighbor(herd, "Zulu", "Alpha")
        big = f"AT Alpha +0.000000000 big.{'x' * 125_000} +1+1 {now()}\n"
        alpha.send(big + f"PUT 1 AT Alpha +0.000000000 after.example +1+1 {now()}\n")
        assert "ACK 1" in alpha.lines_until(lambda lines: "ACK 1" in lines)  # the same link
        log = wait_until(lambda: (lambda l: l if "refused a line" in l else None)(herd.log("Zulu")), 5, "the log line")
        assert log.count("refused a line longer than 65536 bytes") == 1, log[-600:]
        assert "link down" not in log and "xxxxxxxxxx" not in log, log[-600:]
        # A new connection of the link gets the whole store as its catch-up: one record. (A
        # plaintext link is replaced only once it is down.)
        alpha.close()
        wait_until(lambda: not herd.linked("Zulu", "Alpha"), 5, "the link to go down")
        again = FakeNeighbor(herd, "Zulu", "Alpha")
        caught_up = again.lines_until(lambda lines: any("after.example" in l for l in lines))
        assert not any("big." in l for l in caught_up), caught_up
        wait_until(lambda: "catch-up sent: 1 records" in herd.log("Zulu"), 5, "the catch-up to complete")
        assert "catch-up: sending all 1 records" in herd.log("Zulu")
        assert os.path.getsize(os.path.join(herd.dir, "logs", "Zulu.log")) < 10_000
        again.close()
    finally:
        herd.stop()


def a_record_too_long_to_send_on_is_refused(server):
    """An AT line that fits a line but not a PUT's: refused from a neighbor, a PUT acknowledged."""
    herd = Herd(server, links={"Alpha": ["Zulu"], "Zulu": []}).start("Zulu")
    try:
        alpha = FakeNeighbor(herd, "Zulu", "Alpha")
        prefix, suffix = "AT Alpha +0.000000000 ", f" +1+1 {now()}"
        client = "long." + "y" * (RECORD_LIMIT + 1 - len(prefix) - len(suffix) - 5)
        record = prefix + client + suffix
        assert len(record) == RECORD_LIMIT + 1 and len(record) + len("PUT 1 ") < LINE_LIMIT
        alpha.send(f"{record}\nPUT 1 {record}\nPUT 2 AT Alpha +0.000000000 fits.example +1+1 {now()}\n")
        alpha.lines_until(lambda lines: acked(lines) == {1, 2})
        wait_until(lambda: herd.log("Zulu").count(f"refused a record longer than {RECORD_LIMIT} bytes") == 2,
                   5, "a log line for each refused record")
        alpha.close()
        wait_until(lambda: not herd.linked("Zulu", "Alpha"), 5, "the link to go down")
        again = FakeNeighbor(herd, "Zulu", "Alpha")
        caught_up = again.lines_until(lambda lines: any("fits.example" in l for l in lines))
        assert not any("long.y" in l for l in caught_up), [l[:60] for l in caught_up]
        wait_until(lambda: "catch-up sent: 1 records" in herd.log("Zulu"), 5, "the catch-up to complete")
        again.close()
    finally:
        herd.stop()


def an_iamat_whose_at_line_would_not_fit_a_link_is_refused(server):
    """Within the client line limit, but its AT line is not: `? line`, not stored, no link drops."""
    herd = Herd(server, links={"Alpha": ["Beta"], "Beta": []}).start()
    try:
        herd.wait_linked()
        t = now()
        client = "wide." + "z" * (LINE_LIMIT - len(f"IAMAT  +1+1 {t}") - 5 - 10)
        line = f"IAMAT {client} +1+1 {t}"
        assert len(line) < LINE_LIMIT and len(f"AT Alpha +0.000000000 {client} +1+1 {t}") > RECORD_LIMIT
        reply = herd.send("Alpha", line)
        assert reply == f"? {line}\n", reply[:80]
        assert herd.send("Alpha", f"WHATSAT {client} 1 1").startswith("? WHATSAT")
        assert herd.send("Alpha", f"IAMAT after.example +1+1 {now()}").startswith("AT Alpha ")
        wait_until(lambda: herd.send("Beta", "WHATSAT after.example 1 1").startswith("AT Alpha "), 10, "the flood to Beta")
        for name in herd.names:  # (when both dial at start, one connection replaces the other)
            downs = [l for l in herd.log(name).splitlines()
                     if "link down" in l and "replaced by a new connection" not in l]
            assert not downs, downs
    finally:
        herd.stop()


def feed_records(herd, server, neighbor, count):
    """`count` records from a fake neighbor, sent as a catch-up is (plain ATs), then its link closes."""
    fake = FakeNeighbor(herd, server, neighbor)
    t = now()
    fake.send("".join(f"AT {neighbor} +0.000000000 c{i:06d}.example +1+1 {t}\n" for i in range(count)))
    fake.send(f"PUT 1 AT {neighbor} +0.000000000 fed.example +1+1 {t}\n")
    fake.lines_until(lambda lines: "ACK 1" in lines)
    fake.close()


def log_size(herd, name):
    return os.path.getsize(os.path.join(herd.dir, "logs", f"{name}.log"))


def server_log_bytes(herd, name):
    """The bytes of a server's log but for its client lines (the test's own WHATSAT polling)."""
    return sum(len(line) + 1 for line in herd.log(name).splitlines() if not re.search(r"Z client \d+ ", line))


def a_catch_up_is_summarized_not_logged_per_record(server):
    """A restart with N records in the herd: a few lines at the neighbors, not N."""
    count = 20_000
    # Without a store, the restarted Beta is sent every record (with one, only what changed).
    herd = Herd(server, links={"Alpha": ["Beta", "Feeder"], "Beta": [], "Feeder": []},
                extra_toml='[store]\ndir = ""\n').start("Alpha", "Beta")
    try:
        wait_until(lambda: herd.linked("Alpha", "Beta") and herd.linked("Beta", "Alpha"), 10, "Alpha-Beta")
        feed_records(herd, "Alpha", "Feeder", count)
        wait_until(lambda: herd.send("Beta", "WHATSAT fed.example 1 1").startswith("AT "), 20, "the records at Beta")
        herd.kill("Beta")
        alpha_before = server_log_bytes(herd, "Alpha")
        herd.start("Beta")
        wait_until(lambda: f"catch-up sent: {count + 1} records" in herd.log("Alpha"), 30, "the catch-up")
        wait_until(lambda: herd.send("Beta", f"WHATSAT c{count - 1:06d}.example 1 1").startswith("AT "), 20,
                   "Beta to catch up")
        assert herd.kill("Alpha", signal.SIGTERM) == 0 and herd.kill("Beta", signal.SIGTERM) == 0
        # Logged per record, each server's log would hold over a megabyte of them.
        grown = server_log_bytes(herd, "Alpha") - alpha_before
        assert grown < 5_000, f"Alpha's log grew by {grown} bytes for a catch-up of {count} records"
        assert server_log_bytes(herd, "Beta") < 10_000, herd.log("Beta")[-2000:]
        assert server_log_bytes(herd, "Alpha") < 10_000, herd.log("Alpha")[-2000:]
        summaries = re.findall(r"peer Feeder - traffic in [\d.]+ s: received (\d+) records \(\d+ PUTs, (\d+) changed",
                               herd.log("Alpha"))
        assert summaries and sum(int(r) for r, _ in summaries) == count + 1, summaries
        assert sum(int(c) for _, c in summaries) == count + 1, summaries
        received = re.findall(r"peer Alpha - traffic in [\d.]+ s: received (\d+) records", herd.log("Beta"))
        assert sum(map(int, received)) >= count + 1, received  # its first life's and its second's
    finally:
        herd.stop()


def log_levels(server):
    """warn: no traffic at all; info: client lines; debug: a neighbor's lines too."""
    logged = {}
    for level in ("warn", "info", "debug"):
        herd = Herd(server, links={"Alpha": ["Beta"], "Beta": []}, log_level=level).start()
        try:
            if level != "warn":
                herd.wait_linked()
            assert herd.send("Alpha", f"IAMAT level.example +1+1 {now()}").startswith("AT Alpha ")
            assert herd.kill("Alpha", signal.SIGTERM) == 0 and herd.kill("Beta", signal.SIGTERM) == 0
            logged[level] = herd.log("Alpha")
        finally:
            herd.stop()
    # Beta may not listen yet when Alpha first dials it: that is a warning.
    warnings = [line for line in logged["warn"].splitlines() if " - cannot connect to " not in line]
    assert warnings == [], logged["warn"]
    assert "< IAMAT level.example" in logged["info"] and "> AT Alpha" in logged["info"]
    assert "link up" in logged["info"] and "> PUT 1 AT" not in logged["info"], logged["info"]
    assert "< IAMAT level.example" in logged["debug"] and "peer Beta > PUT 1 AT Alpha" in logged["debug"]
    assert "peer Beta < ACK 1" in logged["debug"], logged["debug"]


def a_log_that_cannot_be_written(server):
    """Past the file size limit log writes fail as on a full disk: the server goes on serving,
    says so once on stderr, and the log counts what was lost once it can be written again.
    Without a store file, which the limit would stop (a server that cannot keep its records
    exits)."""
    herd = Herd(server, links={"Solo": []}, extra_toml='[store]\ndir = ""\n').start()
    try:
        pid = herd.procs["Solo"].pid
        wait_until(lambda: log_size(herd, "Solo") > 0, 5, "the first lines")
        hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)[1]
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (log_size(herd, "Solo") + 1000, hard))
        count = 3000
        lines = [f"IAMAT full{i}.example +1+1 {now()}" for i in range(count)]
        replies = herd.send("Solo", *lines).splitlines()
        assert len(replies) == count and all(r.startswith("AT Solo ") for r in replies), replies[-3:]
        wait_until(lambda: "cannot write the log file" in herd.output("Solo"), 5, "the report on stderr")
        assert herd.send("Solo", "WHATSAT full7.example 1 1").startswith("AT Solo ")
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
        herd.send("Solo", f"IAMAT resumed.example +1+1 {now()}")
        log = wait_until(lambda: (lambda l: l if "< IAMAT resumed.example" in l else None)(herd.log("Solo")),
                         5, "writing to resume")
        lost = re.findall(r"log - (\d+) entries lost: the log file could not be written \(File too large\)", log)
        assert len(lost) == 1 and int(lost[0]) > 0, (lost, log[-400:])
        assert herd.output("Solo").count("cannot write the log file") == 1, herd.output("Solo")
        # Every line of the big exchange is in the file, whole, or counted as lost (with at most
        # the six connects, disconnects and lines of the two connections while writes failed).
        whole = sum(1 for line in log.splitlines()
                    if re.search(r" client \d+ (< IAMAT full\d+\.example \S+ \S+|> AT Solo \S+ full\d+\.example \S+ \S+)$", line))
        assert 2 * count - whole <= int(lost[0]) <= 2 * count - whole + 6, (whole, lost)
    finally:
        herd.stop()


def main():
    server = binary_arg("server")
    tap = Tap()
    tap.run("a 125 KB line from a neighbor is refused whole; the link stays", a_125_kb_line_from_a_neighbor_is_refused_whole, server)
    tap.run("a neighbor's record too long to send on is refused", a_record_too_long_to_send_on_is_refused, server)
    tap.run("an IAMAT whose AT line would not fit a link is refused",
            an_iamat_whose_at_line_would_not_fit_a_link_is_refused, server)
    tap.run("a catch-up is summarized in the log, not logged per record", a_catch_up_is_summarized_not_logged_per_record, server)
    tap.run("log levels: warn, info, debug", log_levels, server)
    tap.run("a log that cannot be written: said once, counted when writing resumes", a_log_that_cannot_be_written, server)
    tap.finish()


if __name__ == "__main__":
    main()
