"""The metrics port (/metrics, /healthz) and herdctl status and watch."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from herdtest import Herd, Tap, binary_arg, free_ports, now, wait_until

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # Debian's python3-prometheus-client, when python3 is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

# Goloman links with Hands and Holiday; Holiday has no metrics port.
LINKS = {"Goloman": ["Hands", "Holiday"], "Hands": [], "Holiday": []}
WITH_METRICS = ("Goloman", "Hands")


def metrics_herd(server):
    herd = Herd(server, links=LINKS)
    herd.metrics_ports = dict(zip(WITH_METRICS, free_ports(len(WITH_METRICS))))
    herd.write_config(herd.config, {name: {"metrics_port": port} for name, port in herd.metrics_ports.items()})
    return herd


def curl(*args, timeout=10):
    """curl's status code and body; bounded by curl's own --max-time and a process timeout."""
    result = subprocess.run(["curl", "-s", "--max-time", str(timeout), "-w", "\n%{http_code}", *args],
                            capture_output=True, text=True, timeout=timeout + 5)
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


def url(herd, name, path):
    return f"http://127.0.0.1:{herd.metrics_ports[name]}{path}"


def scrape(herd, name):
    code, text = curl(url(herd, name, "/metrics"))
    assert code == 200, (code, text)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return text, families


def value(families, family, suffix="", **labels):
    for sample in families[family].samples:
        if sample.name == family + suffix and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no sample {family}{suffix} {labels}")


def metrics_parse_and_count(server):
    herd = metrics_herd(server).start()
    try:
        herd.wait_linked()
        herd.send("Goloman", f"IAMAT kiwi +34.068930-118.445127 {now()}", "WHATSAT kiwi 10 2", "nonsense")
        text, families = scrape(herd, "Goloman")
        # The parser strips _total from counters; every family has its HELP and TYPE line.
        for name, family in families.items():
            assert name.startswith("herd_"), name
            assert family.documentation, name
            assert f"# TYPE {name}" in text, name
        assert families["herd_iamat"].type == "counter"
        assert value(families, "herd_iamat", "_total") == 1
        assert value(families, "herd_whatsat", "_total") == 1
        assert value(families, "herd_invalid_lines", "_total") == 1
        assert value(families, "herd_replies", "_total") == 3
        assert families["herd_records_stored"].type == "gauge"
        assert value(families, "herd_records_stored") == 1
        assert value(families, "herd_link_up", neighbor="Hands") == 1
        assert value(families, "herd_link_up", neighbor="Holiday") == 1
        assert value(families, "herd_peer_puts_sent", "_total") == 2
        assert families["herd_peer_ack_latency_seconds"].type == "histogram"
        assert value(families, "herd_peer_ack_latency_seconds", "_count") == 2
        assert value(families, "herd_peer_ack_latency_seconds", "_bucket", le="+Inf") == 2
        assert value(families, "herd_places_lookups", "_total", status="OK") == 1
        assert value(families, "herd_places_lookup_seconds", "_count") == 1
        assert value(families, "herd_log_bytes_written", "_total") > 0
        assert value(families, "herd_uptime_seconds") > 0
        _, hands = scrape(herd, "Hands")
        assert value(hands, "herd_records_stored") == 1 and value(hands, "herd_iamat", "_total") == 0
        # Hands restarts without its state dir: Goloman's catch-up sends it the record (with
        # its state dir and its resume point, there could be nothing to send).
        herd.kill("Hands")
        shutil.rmtree(os.path.join(herd.dir, "state", "Hands"), ignore_errors=True)
        herd.start("Hands")
        wait_until(lambda: value(scrape(herd, "Goloman")[1], "herd_catch_up_records_sent", "_total",
                                 neighbor="Hands") >= 1, 10, "a catch-up counted")
    finally:
        herd.stop()


def http_bounds(server):
    herd = metrics_herd(server).start()
    try:
        code, body = curl(url(herd, "Goloman", "/metrics"))
        assert code == 200 and body.startswith("# HELP herd_"), (code, body[:80])
        assert curl("-I", url(herd, "Goloman", "/metrics"))[0] == 200
        assert curl(url(herd, "Goloman", "/"))[0] == 404
        assert curl(url(herd, "Goloman", "/metrics/x"))[0] == 404
        assert curl("-X", "POST", url(herd, "Goloman", "/metrics"))[0] == 405
        assert curl("-X", "DELETE", url(herd, "Goloman", "/healthz"))[0] == 405
        assert curl("-H", "X-Big: " + "a" * 10000, url(herd, "Goloman", "/metrics"))[0] == 431
        # A request that never ends is answered 408 and closed within the 5 s bound.
        with socket.create_connection(("127.0.0.1", herd.metrics_ports["Goloman"]), timeout=10) as s:
            started = time.monotonic()
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
            took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert 4 < took < 7, took
        # Bytes sent without end: refused once past 8 KiB, not stored.
        with socket.create_connection(("127.0.0.1", herd.metrics_ports["Goloman"]), timeout=10) as s:
            answer = b""
            try:
                for _ in range(100):
                    s.sendall(b"x" * 1024)
            except OSError:
                pass  # the server closed after answering
            s.settimeout(7)
            try:
                while chunk := s.recv(4096):
                    answer += chunk
            except OSError:
                pass
        assert answer.startswith(b"HTTP/1.1 431") or answer == b"", answer[:40]
        assert curl(url(herd, "Goloman", "/healthz"))[0] == 200  # still serving
    finally:
        herd.stop()


def healthz_follows_links(server):
    herd = metrics_herd(server).start()
    try:
        herd.wait_linked()
        assert curl(url(herd, "Goloman", "/healthz")) == (200, "ok\n")
        assert curl(url(herd, "Hands", "/healthz")) == (200, "ok\n")
        herd.kill("Hands")
        wait_until(lambda: curl(url(herd, "Goloman", "/healthz")) == (503, "link to Hands down\n"),
                   10, "a 503 naming Hands")
        herd.kill("Holiday")
        wait_until(lambda: curl(url(herd, "Goloman", "/healthz"))[1] == "links to Hands, Holiday down\n",
                   10, "a 503 naming both")
    finally:
        herd.stop()


def run_herdctl(herdctl, herd, *args):
    return subprocess.run([herdctl, "--config", herd.config, *args], capture_output=True, text=True, timeout=30)


def herdctl_status_stopped_server(server, herdctl):
    herd = metrics_herd(server).start()
    try:
        herd.wait_linked()
        herd.send("Goloman", f"IAMAT kiwi +34.068930-118.445127 {now()}")
        status = run_herdctl(herdctl, herd, "status")
        assert status.returncode == 0, status
        rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
        assert rows["Goloman"].split()[2:4] == ["ok", "2/2"], rows
        assert "listening" in rows["Holiday"] and "metrics off" in rows["Holiday"], rows
        herd.procs["Hands"].send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            status = run_herdctl(herdctl, herd, "status")
            assert time.monotonic() - started < 5
            assert status.returncode == 1, status
            rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
            assert "not answering" in rows["Hands"], status.stdout
            lines = run_herdctl(herdctl, herd, "status", "--json").stdout.splitlines()
            objects = {o["server"]: o for o in map(json.loads, lines)}
            assert objects["Hands"]["state"] == "not answering" and not objects["Hands"]["answering"]
            assert objects["Goloman"]["records"] == 1 and objects["Goloman"]["iamat_total"] == 1
            assert objects["Holiday"]["state"] == "listening" and not objects["Holiday"]["metrics"]
        finally:
            herd.procs["Hands"].send_signal(signal.SIGCONT)
        herd.kill("Holiday")
        def shows_holiday_down():
            lines = run_herdctl(herdctl, herd, "status", "--json").stdout.splitlines()
            goloman = [o for o in map(json.loads, lines) if o["server"] == "Goloman"][0]
            return goloman["links_down"] == ["Holiday"] and goloman["links_up"] == 1 and goloman
        goloman = wait_until(shows_holiday_down, 10, "Goloman's link to Holiday down")
        assert goloman["state"] == "links down"
        watch = run_herdctl(herdctl, herd, "watch", "--json", "--count", "2")
        assert watch.returncode == 0, watch
        objects = [json.loads(line) for line in watch.stdout.splitlines()]
        assert [o["server"] for o in objects] == list(LINKS) * 2, objects
    finally:
        herd.stop()


def main():
    server, herdctl = binary_arg("server"), binary_arg("herdctl")
    tap = Tap()
    tap.run("/metrics parses as Prometheus text and counts what happened", metrics_parse_and_count, server)
    tap.run("the metrics port: 404, 405, HEAD, bounded size and time", http_bounds, server)
    tap.run("/healthz: 200 while every link is up, 503 naming the links down", healthz_follows_links, server)
    tap.run("herdctl status and watch: a stopped server is not answering, links down are named",
            herdctl_status_stopped_server, server, herdctl)
    tap.finish()


if __name__ == "__main__":
    main()
