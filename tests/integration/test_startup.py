"""A server listens before its gazetteer has loaded: IAMAT is answered at once, a WHATSAT
waits for the places (at most places.timeout_ms), and data that turns out unreadable stops
the server. A FIFO as the data file holds the loading back for as long as a test needs."""

import errno
import os
import re
import signal
import socket
import subprocess
import time

from herdtest import AT_LINE, Herd, Tap, binary_arg, now, split_whatsat, wait_until

UCLA = "+34.068930-118.445127"
DATA = os.environ.get("HERD_GEONAMES_DATA", "")
SOLO = {"Solo": []}


def places_toml(data, timeout_ms=60000):
    """Unless a test is about the bound, a WHATSAT may wait as long as a busy machine needs."""
    return f'[places]\nprovider = "geonames"\ndata = "{data}"\ntimeout_ms = {timeout_ms}\n'


class Client:
    """A client connection that keeps what it read past the reply it was asked for."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(10)
        self.pending = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, text):
        self.sock.sendall(text.encode())

    def read_until(self, ending):
        while ending not in self.pending:
            chunk = self.sock.recv(1 << 16)
            assert chunk, f"connection closed after {self.pending!r}"
            self.pending += chunk
        reply, _, self.pending = self.pending.partition(ending)
        return (reply + ending).decode()

    def iamat(self, client):
        self.send(f"IAMAT {client} {UCLA} {now()}\n")
        at = self.read_until(b"\n").rstrip("\n")
        assert AT_LINE.match(at) and at.split()[3] == client, at
        return at

    def whatsat_reply(self, at):
        at_line, places = split_whatsat(self.read_until(b"\n\n"))
        assert at_line == at, (at_line, at)
        return places

    def nothing_arrives(self, seconds):
        self.sock.settimeout(seconds)
        try:
            data = self.pending or self.sock.recv(1 << 16)
            raise AssertionError(f"answered before the places were loaded: {data!r}")
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(10)


def connect(herd):
    return Client(socket.create_connection(("127.0.0.1", herd.ports["Solo"]), timeout=10))


def connect_at_once(herd, deadline=15.0):
    """A connection to Solo's client port, tried every half millisecond from the start."""
    end = time.monotonic() + deadline
    while True:
        s = socket.socket()
        if s.connect_ex(("127.0.0.1", herd.ports["Solo"])) == 0:
            return Client(s)
        s.close()
        assert not herd.exited("Solo"), f"Solo exited: {herd.output('Solo')}"
        assert time.monotonic() < end, f"Solo did not listen within {deadline} s"
        time.sleep(0.0005)


def assert_ucla_places(places):
    assert places["status"] == "OK", places
    names = [r["name"] for r in places["results"]]
    assert len(names) == 5 and names[0] == "Santa Monica", names


class HeldBackData:
    """A FIFO standing in for cities.pbf: the server's load waits until feed() writes it."""

    def __init__(self, herd):
        self.path = os.path.join(herd.dir, "cities.fifo")
        os.mkfifo(self.path)

    def feed(self, data):
        fd = wait_until(self.open_for_writing, 10, "the server to open the FIFO")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


    def open_for_writing(self):
        """A descriptor once the server has the FIFO open for reading, else None."""
        try:
            return os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no reader yet
                return None
            raise


def held_back_herd(server, timeout_ms=60000):
    herd = Herd(server, links=SOLO, places=places_toml("cities.fifo", timeout_ms))
    fifo = HeldBackData(herd)
    herd.start(wait=False)
    wait_until(lambda: herd.listening("Solo") or herd.exited("Solo"), 5,
               "Solo to listen while its places data is held back")
    assert herd.listening("Solo"), f"Solo exited: {herd.output('Solo')}"
    return herd, fifo


def whatsat_at_once_gets_places(server):
    herd = Herd(server, links=SOLO, places=places_toml(DATA)).start(wait=False)
    try:
        with connect_at_once(herd) as c:
            c.send(f"IAMAT early {UCLA} {now()}\nWHATSAT early 10 5\n")
            at = c.read_until(b"\n").rstrip("\n")
            assert_ucla_places(c.whatsat_reply(at))
        loaded = wait_until(lambda: [line for line in herd.log("Solo").splitlines()
                                     if "places loaded from" in line], 10, "the loaded line")
        print(f"# {loaded[0]}", flush=True)  # whether the WHATSAT waited, for the record
    finally:
        herd.stop()


def whatsat_waits_for_the_places(server):
    herd, fifo = held_back_herd(server)
    try:
        with connect(herd) as a:
            at = a.iamat("waiter")
            a.send("WHATSAT waiter 10 5\n")
            a.nothing_arrives(0.3)
            # IAMAT on another connection is answered while that WHATSAT waits.
            with connect(herd) as b:
                b.iamat("other")
            with open(DATA, "rb") as f:
                fifo.feed(f.read())
            assert_ucla_places(a.whatsat_reply(at))
        wait_until(lambda: "lookups that waited: 1" in herd.log("Solo"), 10, "the loaded line")
    finally:
        herd.stop()


def pipelined_whatsats_pause_reading_while_loading(server):
    """Lookups waiting for the places count like unsent replies: a client that pipelines
    thousands of WHATSATs has a few hundred read and waiting, not all of them."""
    herd, fifo = held_back_herd(server)
    n = 5000
    try:
        with connect(herd) as c:
            at = c.iamat("eager")
            c.send("WHATSAT eager 10 1\n" * n)
            c.nothing_arrives(0.5)
            with open(DATA, "rb") as f:
                fifo.feed(f.read())
            for _ in range(n):
                places = c.whatsat_reply(at)
                assert places["status"] == "OK" and len(places["results"]) == 1, places
        line = wait_until(lambda: re.search(r"lookups that waited: (\d+)", herd.log("Solo")), 10,
                          "the loaded line")
        # max_output_bytes 1 MiB pauses reading at 512 KiB; a WHATSAT with bound 1 counts 1 KiB.
        assert 0 < int(line.group(1)) <= 1024, line.group(0)
    finally:
        herd.stop()


def whatsat_waits_at_most_the_timeout(server):
    herd, fifo = held_back_herd(server, timeout_ms=300)
    try:
        with connect(herd) as c:
            at = c.iamat("patient")
            c.send("WHATSAT patient 10 5\n")
            places = c.whatsat_reply(at)
            assert places["status"] == "UNKNOWN_ERROR", places
            assert "still loading after 300 ms" in places["error_message"], places
            with open(DATA, "rb") as f:
                fifo.feed(f.read())
            wait_until(lambda: "places loaded from" in herd.log("Solo"), 10, "the loaded line")
            c.send("WHATSAT patient 10 5\n")
            assert_ucla_places(c.whatsat_reply(at))
    finally:
        herd.stop()


def corrupt_data_stops_the_server(server):
    herd, fifo = held_back_herd(server)
    try:
        with connect(herd) as c:
            at = c.iamat("unlucky")
            c.send("WHATSAT unlucky 10 5\n")
            fifo.feed(b"\x05\x08\x01")  # a record of 5 bytes with 2 left
            places = c.whatsat_reply(at)
            assert places["status"] == "UNKNOWN_ERROR", places
        assert herd.procs["Solo"].wait(timeout=10) == 1
        why = f"{fifo.path}: truncated record (length 5, 2 bytes left) at byte offset 0"
        assert f"herd-server: {why}" in herd.output("Solo"), herd.output("Solo")
        assert why in herd.log("Solo"), herd.log("Solo")[-500:]
    finally:
        herd.stop()


def stops_while_loading(server):
    herd, _ = held_back_herd(server)
    try:
        assert herd.kill("Solo", signal.SIGTERM) == 0, herd.output("Solo")
    finally:
        herd.stop()


def unusable_data_is_a_startup_error(server):
    herd = Herd(server, links=SOLO)
    empty = os.path.join(herd.dir, "empty.pbf")
    open(empty, "w").close()
    cases = [
        ("missing.pbf", "[places] data = {}: no such file"),
        (herd.dir, "{}: is a directory"),
        (empty, "{}: empty file, no records"),
    ]
    for data, message in cases:
        path = data if os.path.isabs(data) else os.path.join(herd.dir, data)
        herd.head = places_toml(data) + '\n[log]\ndir = "logs"\n'
        herd.write_config(herd.config)
        proc = subprocess.run([server, "--config", herd.config, "Solo"], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 1, (data, proc.returncode, proc.stderr)
        assert message.format(path) in proc.stderr, (message.format(path), proc.stderr)
        assert "listening" not in proc.stdout, proc.stdout


def main():
    tap = Tap()
    server = binary_arg("server")
    tap.run("a WHATSAT sent as soon as the port accepts gets the places", whatsat_at_once_gets_places, server)
    tap.run("IAMAT is answered while the places load, and WHATSAT waits for them",
            whatsat_waits_for_the_places, server)
    tap.run("pipelined WHATSATs pause reading while the places load", pipelined_whatsats_pause_reading_while_loading,
            server)
    tap.run("a WHATSAT waits for the places at most places.timeout_ms", whatsat_waits_at_most_the_timeout,
            server)
    tap.run("places data found corrupt after listening stops the server with 1", corrupt_data_stops_the_server,
            server)
    tap.run("SIGTERM stops a server whose places are still loading", stops_while_loading, server)
    tap.run("missing, directory or empty places data stops the server before it listens",
            unusable_data_is_a_startup_error, server)
    tap.finish()


if __name__ == "__main__":
    main()
