"""The client protocol against a running five-server herd (the original topology)."""

import signal
import socket
import threading
import time

from herdtest import AT_LINE, Herd, Tap, binary_arg, exchange, now, split_whatsat, wait_until

UCLA = "+34.068930-118.445127"


def iamat_reply(herd):
    sent = now()
    before = time.time_ns()
    reply = herd.send("Goloman", f"IAMAT kiwi.cs.ucla.edu {UCLA} {sent}")
    after = time.time_ns()
    assert reply.endswith("\n") and reply.count("\n") == 1, repr(reply)
    m = AT_LINE.match(reply[:-1])
    assert m, reply
    server, diff, client, coords, time_field = m.groups()
    assert (server, client, coords, time_field) == ("Goloman", "kiwi.cs.ucla.edu", UCLA, sent)
    # the server's receive time minus the client's time lies within the exchange
    seconds, nanos = sent.split(".")
    sent_ns = int(seconds) * 10**9 + int(nanos)
    sign = -1 if diff[0] == "-" else 1
    whole, frac = diff[1:].split(".")
    diff_ns = sign * (int(whole) * 10**9 + int(frac))
    assert before - sent_ns - 1_000_000 <= diff_ns <= after - sent_ns + 1_000_000, (diff, before, after)


def iamat_echoes_fields_exactly(herd):
    reply = herd.send("Hands", "  IAMAT\tmango  -33.8688+151.2093\t\t1.5  ")
    assert reply == "AT Hands " + reply.split()[2] + " mango -33.8688+151.2093 1.5\n", repr(reply)
    assert abs(float(reply.split()[2]) - (time.time() - 1.5)) < 5, reply  # now minus 1.5 s


def whatsat_two_hops_right_after_iamat(herd):
    # Welsh -> Holiday -> Goloman is two hops, Welsh -> ... -> Hands three; no pause in between.
    for i in range(30):
        client = f"hop{i}.example"
        at = herd.send("Welsh", f"IAMAT {client} {UCLA} {now()}").strip()
        for where in ("Goloman", "Hands", "Wilkes", "Holiday"):
            reply = herd.send(where, f"WHATSAT {client} 10 3")
            at_line, places = split_whatsat(reply)
            assert at_line == at, (where, at_line, at)
            assert places["status"] == "OK", places


def whatsat_reply_shape(herd):
    herd.send("Goloman", f"IAMAT shape.example {UCLA} {now()}")
    reply = herd.send("Holiday", "WHATSAT shape.example 10 5")
    at_line, places = split_whatsat(reply)
    assert AT_LINE.match(at_line) and at_line.split()[1] == "Goloman", at_line
    assert set(places) >= {"html_attributions", "results", "status"}, places.keys()
    assert "GeoNames" in places["html_attributions"][0]
    results = places["results"]
    assert len(results) == 5, len(results)
    assert results[0]["name"] == "Santa Monica", results[0]
    for r in results:
        assert set(r) >= {"name", "geometry", "place_id", "types", "vicinity"}, r
        assert set(r["geometry"]["location"]) == {"lat", "lng"}
        assert r["place_id"].startswith("geonames:")
        assert r["types"] == ["locality", "political"]
    # the bound and the radius limit the answer
    _, ten = split_whatsat(herd.send("Goloman", "WHATSAT shape.example 10 20"))
    assert [r["name"] for r in ten["results"]][-1] == "Westwood" and len(ten["results"]) == 10
    _, none = split_whatsat(herd.send("Goloman", "WHATSAT shape.example 0 20"))
    assert none == {"html_attributions": none["html_attributions"], "results": [], "status": "ZERO_RESULTS"}
    _, zero = split_whatsat(herd.send("Goloman", "WHATSAT shape.example 10 0"))
    assert zero["results"] == [] and zero["status"] == "ZERO_RESULTS"


def invalid_lines(herd):
    lines = [
        "IAMAT kiwi +34.068930-118.445127",
        "IAMAT kiwi 34.068930-118.445127 1520023934.918963997",
        "IAMAT kiwi +91-118 1520023934.918963997",
        "IAMAT kiwi +34-118 yesterday",
        "WHATSAT kiwi.cs.ucla.edu 51 5",
        "WHATSAT kiwi.cs.ucla.edu 10 21",
        "WHATSAT kiwi.cs.ucla.edu 1.5 5",
        "WHATSAT nobody.example 10 5",
        "iamat kiwi +34-118 1520023934",
        "HELLO",
        "",
        "PEER Nobody",
        "ACK 1",
    ]
    reply = herd.send("Goloman", *lines)
    assert reply == "".join(f"? {line}\n" for line in lines), reply


def client_cannot_inject_at(herd):
    forged = f"AT Hands +0.000000000 forged.example {UCLA} {now()}"
    put = f"PUT 1 {forged}"
    assert herd.send("Goloman", forged, put) == f"? {forged}\n? {put}\n"
    assert herd.send("Goloman", "WHATSAT forged.example 10 5") == "? WHATSAT forged.example 10 5\n"
    # not even after a handshake in the middle of a connection
    assert herd.send("Goloman", "WHATSAT x 1 1", "PEER Hands", forged).count("? ") == 3


def times_far_ahead_are_refused(herd):
    """A time more than clients.max_clock_skew_ms (a day) ahead would pin the client for good."""
    t = time.time_ns()
    soon = f"{t // 10**9 + 60}.000000000"
    too_late = f"{t // 10**9 + 86_400 + 60}.000000000"
    pinned = "999999999999999999.999999999"
    for when in (too_late, pinned):
        line = f"IAMAT pinned.example {UCLA} {when}"
        assert herd.send("Goloman", line) == f"? {line}\n"
    assert herd.send("Goloman", "WHATSAT pinned.example 10 5") == "? WHATSAT pinned.example 10 5\n"
    reply = herd.send("Goloman", f"IAMAT pinned.example {UCLA} {soon}")
    assert reply.startswith("AT Goloman ") and reply.rstrip().endswith(soon), reply
    later = herd.send("Goloman", f"IAMAT pinned.example +1+1 {now()}")  # older: not stored
    assert herd.send("Welsh", "WHATSAT pinned.example 10 5").startswith(reply.rstrip() + "\n"), later


def pipelining_in_order(herd):
    lines = []
    for i in range(200):
        lines.append(f"IAMAT pipe{i} {UCLA} {now()}")
        lines.append(f"WHATSAT pipe{i} 5 1")
        lines.append(f"BAD {i}")
    reply = herd.send("Wilkes", *lines)
    parts = reply.split("\n")
    k = 0
    for i in range(200):
        assert parts[k].startswith(f"AT Wilkes ") and f" pipe{i} " in parts[k], parts[k]
        assert parts[k + 1] == parts[k], (parts[k], parts[k + 1])  # WHATSAT repeats the AT line
        k += 2
        while parts[k] != "":
            k += 1
        assert parts[k + 1] == f"? BAD {i}", parts[k + 1]
        k += 2


def one_connection_many_exchanges(herd):
    with socket.create_connection(("127.0.0.1", herd.ports["Hands"]), timeout=10) as s:
        f = s.makefile("rw")
        for i in range(20):
            f.write(f"IAMAT conv{i} {UCLA} {now()}\n")
            f.flush()
            assert f.readline().startswith("AT Hands ")


def last_line_without_newline(herd):
    reply = exchange(herd.ports["Holiday"], f"IAMAT eof.example {UCLA} 1520023934.918963997")
    assert reply.startswith("AT Holiday ") and reply.endswith(" eof.example +34.068930-118.445127 1520023934.918963997\n"), reply
    assert exchange(herd.ports["Holiday"], "JUNK") == "? JUNK\n"


def overlong_line_closes(herd):
    line = "IAMAT " + "x" * 100_000
    with socket.create_connection(("127.0.0.1", herd.ports["Goloman"]), timeout=10) as s:
        s.sendall(line.encode() + b"\nIAMAT after.example +1+1 1\n")
        data = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    reply = data.decode()
    assert reply.startswith("? IAMAT xxx") and reply.endswith("\n") and reply.count("\n") == 1, reply[:80]
    assert len(reply) == 2 + 64 * 1024 + 1, len(reply)
    # the server is fine afterwards
    assert herd.send("Goloman", f"IAMAT after2.example {UCLA} {now()}").startswith("AT Goloman")


def newest_location_wins(herd):
    t = now()
    herd.send("Goloman", f"IAMAT mover.example +10+10 {t}")
    older = f"{int(t.split('.')[0]) - 1}.{t.split('.')[1]}"
    herd.send("Welsh", f"IAMAT mover.example +20+20 {older}")  # an older message arriving later
    for name in herd.names:
        at_line, _ = split_whatsat(herd.send(name, "WHATSAT mover.example 1 1"))
        assert at_line.split()[1] == "Goloman" and at_line.split()[4] == "+10+10", (name, at_line)


def logs_record_traffic(herd):
    herd.send("Welsh", "IAMAT log\x01test +1+1 1")
    log = wait_until(lambda: (lambda l: l if "log\\x01test" in l else None)(herd.log("Welsh")), 5, "the log")
    assert "< IAMAT log\\x01test +1+1 1" in log
    assert "> AT Welsh " in log
    assert "connected from 127.0.0.1" in log
    assert "peer Holiday - link up" in log


def solo_with_send_timeout(server, ms):
    # The output cap would drop a client that reads nothing before its send timeout does.
    return Herd(server, links={"Solo": []},
                extra_toml=f"\n[clients]\nsend_timeout_ms = {ms}\nmax_output_bytes = 1073741824\n").start()


def small_window_client(herd, client):
    """A connection to Solo, which knows `client`, with a receive buffer of a few KB."""
    herd.send("Solo", f"IAMAT {client} {UCLA} 1")
    return client_with_receive_buffer(herd, 4096, 20)


def client_that_does_not_read_is_dropped(server):
    """It may not hold its connection and the replies waiting for it forever."""
    herd = solo_with_send_timeout(server, 500)
    try:
        s = small_window_client(herd, "stuck.example")

        def write_without_reading():  # megabytes of replies that are never read
            try:
                s.sendall(b"WHATSAT stuck.example 50 20\n" * 20000)
            except OSError:
                pass  # the server gave up on this client

        writer = threading.Thread(target=write_without_reading)
        writer.start()
        wait_until(lambda: "took none of its replies for 500 ms; disconnecting" in herd.log("Solo"),
                   15, "the stuck client to be dropped")
        writer.join(20)
        s.close()
        assert herd.send("Solo", f"IAMAT other.example {UCLA} 1").startswith("AT Solo ")
    finally:
        herd.stop()


def slow_reader_is_kept(server):
    """A client that reads slowly, but reads, is not taken for one that has stopped."""
    herd = solo_with_send_timeout(server, 1000)
    try:
        s = small_window_client(herd, "slow.example")
        writer = threading.Thread(target=lambda: s.sendall(b"WHATSAT slow.example 50 20\n" * 2000))
        writer.start()
        # About 20 KB/s for 4 s: a write to the client takes far longer than the timeout to
        # complete, but the client takes some of its replies every fraction of a second.
        received = 0
        for _ in range(80):
            time.sleep(0.05)
            chunk = s.recv(1024)
            assert chunk, f"dropped after {received} bytes"
            received += len(chunk)
        assert "took none of its replies" not in herd.log("Solo")
        s.shutdown(socket.SHUT_RDWR)
        s.close()
        writer.join(20)
    finally:
        herd.stop()


def read_to_eof(s, deadline_s=20):
    """Everything until the server closes; raises on a reset."""
    got = bytearray()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            return bytes(got)
        got += chunk
    raise AssertionError(f"no EOF within {deadline_s} s ({len(got)} bytes)")


def client_with_receive_buffer(herd, size, timeout):
    """A connection to Solo whose receive buffer holds about `size` bytes."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", herd.ports["Solo"]))
    return s


def sigterm_then_a_late_line(server, count, receive_buffer, pause, late_line):
    """`count` invalid 1 KB lines sent without reading, SIGTERM once Solo has read them all,
    `late_line` sent `pause` seconds later: every reply must still arrive, then a clean EOF."""
    # Megabytes of replies wait while the client writes on: more than the default output cap.
    herd = Herd(server, links={"Solo": []}, extra_toml="\n[clients]\nmax_output_bytes = 67108864\n").start()
    try:
        s = client_with_receive_buffer(herd, receive_buffer, 10)
        line = b"bogus " + b"y" * 1000 + b"\n"
        s.sendall(line * count)
        wait_until(lambda: herd.log("Solo").count("< bogus") >= count, 10, "every line read")
        herd.procs["Solo"].send_signal(signal.SIGTERM)
        time.sleep(pause)
        s.sendall(late_line)  # unread: it must not reset the connection
        replies = read_to_eof(s)
        assert replies == (b"? " + line) * count, f"{len(replies)} bytes, {replies.count(b'?')} replies"
        assert herd.procs["Solo"].wait(timeout=10) == 0
    finally:
        herd.stop()


def stopping_server_answers_a_client_still_writing(server):
    """SIGTERM answers every line read before it, even to a client that writes after it:
    6 MB of "?" replies, far more than the socket buffers hold."""
    sigterm_then_a_late_line(server, 6000, 65536, 0.3, b"IAMAT after.stop +1+1 1\n")


def stopped_server_keeps_replies_of_a_client_writing_late(server):
    """After SIGTERM the server lingers: a line the client sends once the server has written
    everything (300 KB: the server's buffers take them, ours do not) is drained, not answered
    with a reset that destroys the replies in flight."""
    sigterm_then_a_late_line(server, 300, 16384, 0.5, b"IAMAT late.example +1+1 1\n")

def main():
    tap = Tap()
    herd = Herd(binary_arg("server")).start()
    try:
        herd.wait_linked()
        tap.run("IAMAT is answered with AT and an exact time difference", iamat_reply, herd)
        tap.run("IAMAT fields are echoed exactly, whatever the whitespace", iamat_echoes_fields_exactly, herd)
        tap.run("WHATSAT two and three hops away right after the IAMAT", whatsat_two_hops_right_after_iamat, herd)
        tap.run("WHATSAT replies: AT line, legacy Places JSON, one empty line", whatsat_reply_shape, herd)
        tap.run("invalid lines are answered with ? and the line", invalid_lines, herd)
        tap.run("a client cannot inject AT or PUT", client_cannot_inject_at, herd)
        tap.run("an IAMAT more than a day ahead is refused", times_far_ahead_are_refused, herd)
        tap.run("pipelined commands are answered in order", pipelining_in_order, herd)
        tap.run("one connection carries many exchanges", one_connection_many_exchanges, herd)
        tap.run("a last line ending at EOF is answered", last_line_without_newline, herd)
        tap.run("an overlong line is refused and the connection closed", overlong_line_closes, herd)
        tap.run("the newest client time wins on every server", newest_location_wins, herd)
        tap.run("the log records lines, connects and links", logs_record_traffic, herd)
    finally:
        herd.stop()
    tap.run("a client that reads none of its replies is disconnected", client_that_does_not_read_is_dropped,
            binary_arg("server"))
    tap.run("a client that reads slowly is kept", slow_reader_is_kept, binary_arg("server"))
    tap.run("a stopping server answers what it read, though the client writes on",
            stopping_server_answers_a_client_still_writing, binary_arg("server"))
    tap.run("a stopped server lingers for a client that writes after it has answered",
            stopped_server_keeps_replies_of_a_client_writing_late, binary_arg("server"))
    tap.finish()


if __name__ == "__main__":
    main()
