"""Catch-up moves only what changed: a restarted server, a flapping link, a lost state dir."""

import os
import re
import shutil
import signal
import socket
import time

from herdtest import Herd, Tap, binary_arg, now, wait_until
from tcp_proxy import TcpProxy

FILLED = 20_000  # records in the herd before the server stops
NEW = 1_000      # told elsewhere while it is down


def fill(herd, server, prefix, count, batch=5_000):
    """`count` IAMATs for new clients, pipelined in a few connections; all answered."""
    for first in range(0, count, batch):
        lines = [f"IAMAT {prefix}{i}.example +1+1 {now()}" for i in range(first, min(first + batch, count))]
        reply = herd.send(server, *lines, timeout=60)
        assert reply.count("AT ") == len(lines), reply[-200:]


def knows_all(herd, server, prefix, count):
    """Whether `server` holds a record for each of the `count` clients (one pipelined connection)."""
    reply = herd.send(server, *(f"WHATSAT {prefix}{i}.example 1 1" for i in range(count)), timeout=60)
    return not any(line.startswith("? ") for line in reply.splitlines())


def sent_to(log, neighbor):
    """The record counts of the catch-ups a server's log says it sent to `neighbor`."""
    return [int(n) for n in re.findall(rf"peer {neighbor} - catch-up sent: (\d+) records", log)]


def resume_points_written(herd, server, neighbors, quiet_s=1.5):
    """Returns a predicate: whether the server's file has not grown for `quiet_s` (three times
    the neighbors' SYNCED period: their last SYNCED has come) and its last lines, after its last
    record, are resume points for each of the neighbors."""
    path = os.path.join(herd.dir, "state", server, "records")
    seen = {"size": -1, "since": 0.0}

    def written():
        size = os.path.getsize(path)
        if size != seen["size"]:
            seen.update(size=size, since=time.monotonic())
            return False
        if time.monotonic() - seen["since"] < quiet_s:
            return False
        with open(path) as f:
            lines = f.read().splitlines()
        tail = []
        while lines and lines[-1].split()[1] == "SYNCED":
            tail.append(lines.pop().split()[2])
        return set(neighbors) <= set(tail)
    return written


def synced_to(herd, server, neighbor, seq):
    """Whether `server`'s debug log shows a SYNCED from `neighbor` with that number."""
    return re.search(rf"peer {neighbor} < SYNCED [0-9a-f]{{16}} {seq}$", herd.log(server), re.M)


def restarted_server_is_sent_only_what_changed(server):
    herd = Herd(server, links={"Alpha": ["Bravo", "Charlie"], "Bravo": ["Charlie"], "Charlie": []},
                extra_toml="[store]\n").start()
    try:
        herd.wait_linked()
        fill(herd, "Alpha", "old", FILLED)
        wait_until(lambda: knows_all(herd, "Charlie", "old", FILLED), 30, "Charlie to know every record")
        wait_until(resume_points_written(herd, "Charlie", ("Alpha", "Bravo")), 15,
                   "Charlie's resume points after its last record")
        assert herd.kill("Charlie", signal.SIGTERM) == 0, herd.output("Charlie")
        fill(herd, "Bravo", "new", NEW)
        before = {name: len(herd.log(name)) for name in ("Alpha", "Bravo")}
        herd.start("Charlie")
        wait_until(lambda: knows_all(herd, "Charlie", "new", NEW), 10, "Charlie to know the new records")
        for name in ("Alpha", "Bravo"):
            wait_until(lambda: sent_to(herd.log(name)[before[name]:], "Charlie"), 10, f"{name}'s catch-up")
            sent = sent_to(herd.log(name)[before[name]:], "Charlie")
            print(f"# {name} sent Charlie {sent} records in its catch-up", flush=True)
            # Without resume points each sends the whole store: FILLED + NEW records. A SYNCED
            # may have come before the last few records to reach a neighbor through the other;
            # when both sides dial at once, the connection replaced may have had a catch-up too.
            assert max(sent) <= NEW + 100 and NEW <= sum(sent), (name, sent, herd.log(name)[before[name]:][-1500:])
        assert "catch-up received: " in herd.log("Charlie")
        assert knows_all(herd, "Charlie", "old", FILLED)
    finally:
        herd.stop()


def flapping_link_resends_only_what_changed(server):
    herd = Herd(server, links={"Alpha": ["Bravo"], "Bravo": []}, log_level="debug")
    proxy = TcpProxy(herd.peer_port("Bravo")).start()
    try:
        herd.dial_via("Alpha", "Bravo", proxy.port)
        herd.start()
        herd.wait_linked()
        fill(herd, "Alpha", "kept", 5_000)
        wait_until(lambda: knows_all(herd, "Bravo", "kept", 5_000), 20, "Bravo to know every record")
        # Each side has numbered 5,000 changes (no store: from 0), and says so once it has sent them.
        wait_until(lambda: synced_to(herd, "Bravo", "Alpha", 5_000) and synced_to(herd, "Alpha", "Bravo", 5_000),
                   5, "SYNCED after the last change")
        before = {name: len(herd.log(name)) for name in herd.names}
        proxy.blackhole()
        proxy.cut()
        wait_until(lambda: not herd.linked("Alpha", "Bravo"), 10, "the link to go down")
        fill(herd, "Alpha", "while-down", 50)
        fill(herd, "Bravo", "other-side", 7)
        proxy.heal()
        wait_until(lambda: knows_all(herd, "Bravo", "while-down", 50), 10, "Bravo to catch up")
        wait_until(lambda: knows_all(herd, "Alpha", "other-side", 7), 10, "Alpha to catch up")
        for name, neighbor, changed in (("Alpha", "Bravo", 50), ("Bravo", "Alpha", 7)):
            log = wait_until(lambda: (lambda l: l if sent_to(l, neighbor) else None)(herd.log(name)[before[name]:]),
                             5, f"{name}'s catch-up")
            # Without resume points: the whole store, 5,057 records, each way.
            assert sent_to(log, neighbor) == [changed], (name, log[-1500:])
    finally:
        proxy.close()
        herd.stop()


def server_without_its_state_dir_gets_everything(server):
    herd = Herd(server, links={"Alpha": ["Bravo"], "Bravo": []}, extra_toml="[store]\n").start()
    try:
        herd.wait_linked()
        fill(herd, "Alpha", "all", 3_000)
        wait_until(lambda: knows_all(herd, "Bravo", "all", 3_000), 20, "Bravo to know every record")
        epoch_file = os.path.join(herd.dir, "state", "Bravo", "epoch")
        old_epoch = open(epoch_file).read()
        assert herd.kill("Bravo", signal.SIGTERM) == 0
        shutil.rmtree(os.path.join(herd.dir, "state", "Bravo"))
        before = len(herd.log("Alpha"))
        herd.start("Bravo")
        wait_until(lambda: knows_all(herd, "Bravo", "all", 3_000), 10, "Bravo to know every record again")
        log = wait_until(lambda: (lambda l: l if sent_to(l, "Bravo") else None)(herd.log("Alpha")[before:]), 5,
                         "Alpha's catch-up")
        assert sent_to(log, "Bravo") == [3_000], log[-1500:]
        assert "catch-up: sending all 3000 records" in log, log[-1500:]
        assert open(epoch_file).read() != old_epoch
    finally:
        herd.stop()


def whatsat_waits_for_a_catch_up_in_progress(server):
    """A WHATSAT for a client the server does not know, while a neighbor's catch-up has not
    reached its SYNCED, waits for it: the record that the catch-up brings is the answer."""
    herd = Herd(server, links={"Alpha": ["Zulu"], "Zulu": []}).start("Zulu")
    link = client = None
    try:
        link = socket.create_connection(("127.0.0.1", herd.peer_ports["Zulu"]), timeout=5)
        link.sendall(b"PEER Alpha\nSINCE - 0\n")  # a neighbor whose catch-up has begun
        wait_until(lambda: herd.linked("Zulu", "Alpha"), 5, "the link")
        client = socket.create_connection(("127.0.0.1", herd.ports["Zulu"]), timeout=5)
        client.sendall(b"WHATSAT caught.example 1 1\n")
        wait_until(lambda: "WHATSAT caught.example" in herd.log("Zulu"), 5, "the WHATSAT read")
        link.sendall(f"AT Alpha +0.000000000 caught.example +1+1 {now()}\nSYNCED 00000000000000aa 1\n".encode())
        reply = client.makefile("rb").readline().decode()
        # Without the wait: "? WHATSAT caught.example 1 1", at once.
        assert reply.startswith("AT Alpha +0.000000000 caught.example "), reply
        wait_until(lambda: "peer Alpha - catch-up received: 1 records (1 changed the store)" in herd.log("Zulu"), 5,
                   "the catch-up's log line")
        # Once the catch-up is done, an unknown client is answered at once.
        unknown = herd.send("Zulu", "WHATSAT unknown.example 1 1")
        assert unknown == "? WHATSAT unknown.example 1 1\n", unknown
    finally:
        for s in (link, client):
            if s:
                s.close()
        herd.stop()


if __name__ == "__main__":
    server = binary_arg("server")
    tap = Tap()
    tap.run("a restarted server is sent only what changed while it was down",
            restarted_server_is_sent_only_what_changed, server)
    tap.run("a flapping link resends only what changed", flapping_link_resends_only_what_changed, server)
    tap.run("a server whose state dir was removed gets everything",
            server_without_its_state_dir_gets_everything, server)
    tap.run("a WHATSAT for an unknown client waits for a catch-up in progress",
            whatsat_waits_for_a_catch_up_in_progress, server)
    tap.finish()
