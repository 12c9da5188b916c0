"""Neighbors behind a TCP proxy (tcp_proxy.py): a slow one, a partition and its heal."""

import socket
import statistics
import time

from herdtest import Herd, Tap, binary_arg, now, split_whatsat, wait_until
from tcp_proxy import TcpProxy


def record_at(herd, server, client):
    """The AT line `server` holds for `client`, or None."""
    reply = herd.send(server, f"WHATSAT {client} 1 1")
    return None if reply.startswith("? ") else split_whatsat(reply)[0]


class Client:
    """One connection sending IAMATs one at a time, timing each reply."""

    def __init__(self, port, client):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.client = client
        self.buffer = b""

    def iamat(self):
        started = time.monotonic()
        self.sock.sendall(f"IAMAT {self.client} +1+1 {now()}\n".encode())
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            assert chunk, "the server closed the connection"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        assert line.startswith(b"AT "), line
        return time.monotonic() - started

    def close(self):
        self.sock.close()


def latencies(clients, seconds):
    """IAMATs from each client in turn for `seconds`: each one's reply times."""
    times = {name: [] for name in clients}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for name, client in clients.items():
            times[name].append(client.iamat())
    return times


def summary(times):
    return ", ".join(f"{name}: {len(t)} IAMATs, median {statistics.median(t) * 1000:.2f} ms"
                     for name, t in times.items())


def the_proxy_delays_blackholes_heals_and_cuts(server):
    herd = Herd(server, links={"Solo": []}).start()
    proxy = TcpProxy(herd.ports["Solo"]).start()  # a client through it, to the client port
    try:
        client = Client(proxy.port, "proxied.example")
        client.iamat()
        proxy.delay(0.3, towards="dialer")
        assert client.iamat() >= 0.3
        proxy.delay(0, towards="dialer")
        proxy.delay(0.3, towards="target")
        assert client.iamat() >= 0.3
        proxy.delay(0, towards="target")

        proxy.blackhole()  # fails unless a SYN to the full accept queue goes unanswered
        client.sock.sendall(f"IAMAT held.example +1+1 {now()}\n".encode())
        client.sock.settimeout(0.5)
        try:
            raise AssertionError(f"a blackholed proxy forwarded {client.sock.recv(100)!r}")
        except socket.timeout:
            pass
        dialer = socket.socket()
        dialer.settimeout(1.5)
        try:
            dialer.connect(("127.0.0.1", proxy.port))
            raise AssertionError("connected through a blackholed proxy")
        except socket.timeout:
            pass
        dialer.close()

        proxy.heal()
        client.sock.settimeout(5)
        assert client.sock.recv(100).startswith(b"AT Solo "), "what was held arrives"
        late = Client(proxy.port, "late.example")  # a SYN the kernel would have dropped before
        late.iamat()
        wait_until(lambda: proxy.count() == 2, 5, "two connections through the proxy")

        proxy.cut()
        try:
            assert client.sock.recv(100) == b""
        except ConnectionResetError:
            pass
        wait_until(lambda: proxy.count() == 0, 5, "no connection left")
        client.close()
        late.close()
    finally:
        proxy.close()
        herd.stop()


def slow_neighbor_does_not_slow_the_herd(server):
    """Beta acknowledges 2.5 s late (inside the 3 s limit): IAMATs at Alpha, whose neighbor it
    is, and at Gamma, one hop further, are answered without waiting for it once it is seen to
    lag; Beta still gets every update; once it keeps up again it is waited for again."""
    herd = Herd(server, links={"Alpha": ["Beta", "Gamma"], "Beta": [], "Gamma": []})
    proxy = TcpProxy(herd.peer_port("Beta")).start()
    clients = {}
    try:
        herd.dial_via("Alpha", "Beta", proxy.port)
        herd.start()
        herd.wait_linked()
        clients = {name: Client(herd.ports[name], f"slow-{name}.example") for name in ("Gamma", "Alpha")}
        print(f"# before, 5 s: {summary(latencies(clients, 5))}", flush=True)

        proxy.delay(2.5, towards="dialer")  # Beta's ACKs (and all else it sends) reach Alpha late
        print(f"# the first 3 s with Beta 2.5 s late: {summary(latencies(clients, 3))}", flush=True)
        during = latencies(clients, 5)
        print(f"# the next 5 s: {summary(during)}", flush=True)
        for name, times in during.items():
            assert statistics.median(times) < 0.05, summary({name: times})
        assert "peer Beta - lagging" in herd.log("Alpha"), herd.log("Alpha")[-1000:]

        last = record_at(herd, "Alpha", "slow-Gamma.example")
        wait_until(lambda: record_at(herd, "Beta", "slow-Gamma.example") == last, 10, "Beta to have the last update")

        proxy.delay(0, towards="dialer")
        wait_until(lambda: latencies(clients, 0.1) and "peer Beta - keeps up again" in herd.log("Alpha"),
                   15, "Alpha to wait for Beta again")
    finally:
        for client in clients.values():
            client.close()
        proxy.close()
        herd.stop()


PARTITION_S = 25  # ends where a redial without a connect timeout waits out a long SYN retry
HEALED_WITHIN_S = 5


def partition_heals_fast(server):
    """Alpha dials Beta through the proxy, which blackholes the path for 25 s: a record IAMATed
    on either side meanwhile is known on the other within 5 s of the heal."""
    herd = Herd(server, links={"Alpha": ["Beta"], "Beta": []})
    proxy = TcpProxy(herd.peer_port("Beta")).start()
    try:
        herd.dial_via("Alpha", "Beta", proxy.port)
        herd.start()
        herd.wait_linked()
        proxy.blackhole()
        cut_at = time.monotonic()
        # Each side's unacknowledged PUT takes its link down after 3 s; Alpha then redials.
        assert herd.send("Alpha", f"IAMAT west.example +1+1 {now()}").startswith("AT Alpha ")
        assert herd.send("Beta", f"IAMAT east.example +2+2 {now()}").startswith("AT Beta ")
        wait_until(lambda: not herd.linked("Alpha", "Beta"), 10, "Alpha to drop its link")
        time.sleep(max(0.0, cut_at + PARTITION_S - time.monotonic()))  # the partition itself

        proxy.heal()
        healed_at = time.monotonic()

        def converged():
            return (record_at(herd, "Alpha", "east.example") and record_at(herd, "Beta", "west.example"))

        try:
            wait_until(converged, HEALED_WITHIN_S, "both records on both sides")
        except AssertionError:
            late = "not within 30 s either"
            try:
                wait_until(converged, 30 - HEALED_WITHIN_S, "convergence at last")
                late = f"only {time.monotonic() - healed_at:.1f} s after the heal"
            except AssertionError:
                pass
            raise AssertionError(f"not converged within {HEALED_WITHIN_S} s of the heal; {late}")
        print(f"# converged {time.monotonic() - healed_at:.2f} s after the heal", flush=True)
    finally:
        proxy.close()
        herd.stop()


def crossing_dials(server, herdctl, tls, to_beta, to_alpha):
    """Alpha (the redialer) and Beta dial each other at once, each through a proxy of its own
    that delays the directions given ({"target": s, "dialer": s}): to_beta for Alpha's dial,
    to_alpha for Beta's, which waits for Alpha to listen. Whichever way the crossing goes, the
    link never goes down: neither log has a warning, one connection stays, records cross."""
    herd = Herd(server, links={"Alpha": ["Beta"], "Beta": []}, log_level="warn",
                tls_herdctl=herdctl if tls else None)
    alpha_dials = TcpProxy(herd.peer_port("Beta")).start()
    beta_dials = TcpProxy(herd.peer_port("Alpha"), patience=10).start()
    try:
        for proxy, delays in ((alpha_dials, to_beta), (beta_dials, to_alpha)):
            for towards, seconds in delays.items():
                proxy.delay(seconds, towards)
        herd.views = {"Alpha": {"Beta": {"peer_port": alpha_dials.port}},
                      "Beta": {"Alpha": {"peer_port": beta_dials.port}}}
        for name, view in herd.views.items():
            herd.write_config(herd.config_of(name), view)
        herd.start("Beta")  # it dials Alpha at once: the proxy holds the connection
        herd.start("Alpha")
        started = time.monotonic()
        # Both handshakes end within 3 s, and a connection left for the other side to close
        # is closed within 3 s more.
        wait_until(lambda: time.monotonic() - started > 3.5 and
                   alpha_dials.count() + beta_dials.count() == 1, 10, "one connection between them")
        for name in herd.names:
            assert herd.log(name) == "", f"{name} logged warnings:\n{herd.log(name)}"
        at_alpha = herd.send("Alpha", f"IAMAT west.example +1+1 {now()}").strip()
        at_beta = herd.send("Beta", f"IAMAT east.example +2+2 {now()}").strip()
        wait_until(lambda: record_at(herd, "Beta", "west.example") == at_alpha, 5, "Alpha's record at Beta")
        wait_until(lambda: record_at(herd, "Alpha", "east.example") == at_beta, 5, "Beta's record at Alpha")
        assert alpha_dials.count() + beta_dials.count() == 1
        assert herd.log("Alpha") == "" and herd.log("Beta") == ""
    finally:
        alpha_dials.close()
        beta_dials.close()
        herd.stop()


def main():
    server = binary_arg("server")
    tap = Tap()
    tap.run("the test proxy delays, blackholes (SYNs unanswered), heals and cuts",
            the_proxy_delays_blackholes_heals_and_cuts, server)
    tap.run("a neighbor that acknowledges 2.5 s late does not slow the herd's replies",
            slow_neighbor_does_not_slow_the_herd, server)
    tap.run("after a 25 s partition the herd converges within 5 s of the heal", partition_heals_fast, server)
    herdctl = binary_arg("herdctl")
    # Alpha takes Beta's connection; Beta, linked by Alpha's, leaves its own for Alpha to close.
    tap.run("crossing dials: Alpha's comes up second; the link stays up",
            crossing_dials, server, herdctl, False, {"dialer": 1.5}, {"dialer": 0.5})
    tap.run("crossing dials, TLS: Alpha's comes up second; the link stays up",
            crossing_dials, server, herdctl, True, {"dialer": 0.8}, {"dialer": 0.6})
    # Beta's dial is up on both sides before Alpha's handshake ends: Beta refuses Alpha's.
    tap.run("crossing dials, TLS: Beta's is up first; the link stays up",
            crossing_dials, server, herdctl, True, {"target": 0.5, "dialer": 0.5}, {})
    # Alpha's dial is up on both sides before Beta's handshake ends: Alpha refuses Beta's.
    tap.run("crossing dials, TLS: Alpha's is up first; the link stays up",
            crossing_dials, server, herdctl, True, {}, {"target": 0.4, "dialer": 0.4})
    tap.finish()


if __name__ == "__main__":
    main()
