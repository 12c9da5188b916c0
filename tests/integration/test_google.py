"""WHATSAT through the Google providers, against the fake Places server (tests/fake_places)."""

import json
import os
import socket
import subprocess
import threading
import urllib.request

from herdtest import Herd, Tap, binary_arg, free_ports, now, split_whatsat, wait_until

KEY = "sekrit-key-4f1c2a"
UCLA = "+34.068930-118.445127"
NEW_PATH = "/v1/places:searchNearby"
LEGACY_PATH = "/maps/api/place/nearbysearch/json"


class Fake:
    """The fake Places server on a free port."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen([binary, "--port", "0", "--key", KEY, *args],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.split()[-1])

    def url(self, path, mode=None):
        prefix = f"/_mode/{mode}" if mode else ""
        return f"http://127.0.0.1:{self.port}{prefix}{path}"

    def requests(self, api_only=True):
        with urllib.request.urlopen(self.url("/_requests"), timeout=5) as r:
            seen = json.load(r)
        control = ("/_requests", "/_reset")
        return [q for q in seen if not q["path"].startswith(control)] if api_only else seen

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def solo(server, provider, endpoint, timeout_ms=3000, extra="", key=KEY):
    places = (f'[places]\nprovider = "{provider}"\nendpoint = "{endpoint}"\n'
              f"timeout_ms = {timeout_ms}\n{extra}")
    env = {"GOOGLE_PLACES_API_KEY": key} if key is not None else {}
    herd = Herd(server, links={"Solo": []}, places=places, extra_env=env)
    if key is None:
        herd.env.pop("GOOGLE_PLACES_API_KEY", None)
    return herd


def whatsat(herd, client="kiwi.example", radius=10, bound=5):
    herd.send("Solo", f"IAMAT {client} {UCLA} {now()}")
    return split_whatsat(herd.send("Solo", f"WHATSAT {client} {radius} {bound}"))


def new_api_end_to_end(server, fake):
    herd = solo(server, "google", fake.url(NEW_PATH)).start()
    try:
        at_line, places = whatsat(herd, bound=5)
        assert at_line.startswith("AT Solo ") and places["status"] == "OK", places
        assert len(places["results"]) == 5
        r = places["results"][0]
        assert set(r) >= {"name", "geometry", "place_id", "vicinity", "types", "rating",
                          "user_ratings_total", "business_status"}, r
        assert r["name"].startswith("Fake ") and set(r["geometry"]["location"]) == {"lat", "lng"}
        asked = fake.requests()[-1]
        assert asked["method"] == "POST" and asked["path"] == NEW_PATH, asked
        headers = asked["headers"]
        assert headers["x-goog-api-key"] == KEY
        assert set(headers["x-goog-fieldmask"].split(",")) >= {"places.id", "places.displayName", "places.location"}
        assert "*" not in headers["x-goog-fieldmask"]
        body = json.loads(asked["body"])
        assert body["maxResultCount"] == 5
        circle = body["locationRestriction"]["circle"]
        assert circle["radius"] == 10000 and abs(circle["center"]["latitude"] - 34.06893) < 1e-9
        _, none = whatsat(herd, client="far.example", radius=10, bound=20)
        assert none["status"] == "OK" and len(none["results"]) == 20
    finally:
        herd.stop()


def legacy_end_to_end(server, fake):
    herd = solo(server, "google-legacy", fake.url(LEGACY_PATH)).start()
    try:
        _, places = whatsat(herd, bound=3)
        assert places["status"] == "OK" and len(places["results"]) == 3, places
        # every field of a kept result passes through unchanged
        with urllib.request.urlopen(fake.url(f"{LEGACY_PATH}?location=34.068930,-118.445127&radius=10000&key={KEY}")) as r:
            direct = json.load(r)
        assert places["results"] == direct["results"][:3]
        assert "next_page_token" not in places
        asked = [q for q in fake.requests() if "location=34.06893" in q["path"] and q["method"] == "GET"][-2]
        assert f"key={KEY}" in asked["path"] and "radius=10000" in asked["path"], asked
    finally:
        herd.stop()


def faults_answer_cleanly(server, fake):
    closed_port = free_ports(1)[0]
    cases = [
        ("google", fake.url(NEW_PATH, "denied"), KEY, "REQUEST_DENIED", "API key not valid"),
        ("google", fake.url(NEW_PATH), "wrong-key", "REQUEST_DENIED", "API key not valid"),
        ("google", fake.url(NEW_PATH, "quota"), KEY, "OVER_QUERY_LIMIT", "Quota"),
        ("google", fake.url(NEW_PATH, "invalid"), KEY, "INVALID_REQUEST", "invalid argument"),
        ("google", fake.url(NEW_PATH, "5xx"), KEY, "UNKNOWN_ERROR", "HTTP 503"),
        ("google", fake.url(NEW_PATH, "garbage"), KEY, "UNKNOWN_ERROR", "JSON"),
        ("google", fake.url(NEW_PATH, "hang"), KEY, "UNKNOWN_ERROR", "timed out after 500 ms"),
        ("google", fake.url(NEW_PATH, "close"), KEY, "UNKNOWN_ERROR", "upstream"),
        ("google", f"http://127.0.0.1:{closed_port}{NEW_PATH}", KEY, "UNKNOWN_ERROR", "refused"),
        ("google-legacy", fake.url(LEGACY_PATH, "denied"), KEY, "REQUEST_DENIED", "API key is invalid"),
        ("google-legacy", fake.url(LEGACY_PATH, "quota"), KEY, "OVER_QUERY_LIMIT", "quota"),
        ("google-legacy", fake.url(LEGACY_PATH, "invalid"), KEY, "INVALID_REQUEST", "Invalid request"),
        ("google-legacy", fake.url(LEGACY_PATH, "5xx"), KEY, "UNKNOWN_ERROR", "HTTP 503"),
        ("google-legacy", fake.url(LEGACY_PATH, "garbage"), KEY, "UNKNOWN_ERROR", "JSON"),
        ("google-legacy", fake.url(LEGACY_PATH, "hang"), KEY, "UNKNOWN_ERROR", "timed out after 500 ms"),
        ("google-legacy", fake.url(LEGACY_PATH, "zero"), KEY, "ZERO_RESULTS", None),
    ]
    for provider, endpoint, key, status, message in cases:
        herd = solo(server, provider, endpoint, timeout_ms=500, key=key).start()
        try:
            at_line, places = whatsat(herd)
            assert at_line.startswith("AT Solo "), at_line
            assert places["status"] == status and places["results"] == [], (provider, endpoint, places)
            if message:
                assert message.lower() in places["error_message"].lower(), (endpoint, places)
            for text in (json.dumps(places), herd.log("Solo")):
                assert key not in text, (endpoint, "the key leaked")
            # the server is still fine
            assert herd.send("Solo", f"IAMAT after.example {UCLA} {now()}").startswith("AT Solo")
        finally:
            herd.stop()


def identical_lookups_share_one_request(server, fake):
    herd = solo(server, "google", fake.url(NEW_PATH, "slow")).start()
    try:
        herd.send("Solo", f"IAMAT same.example {UCLA} {now()}")
        before = len(fake.requests())
        replies = [None] * 20

        def ask(i):
            replies[i] = herd.send("Solo", f"WHATSAT same.example 10 {1 + i % 5}")

        # The first asks for 5 places; while its request is upstream, the others (any bound
        # up to 5) join it rather than asking again.
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
        threads[4].start()
        wait_until(lambda: len(fake.requests()) > before, 5, "the first lookup to reach upstream")
        for t in threads[:4] + threads[5:]:
            t.start()
        for t in threads:
            t.join()
        for i, reply in enumerate(replies):
            _, places = split_whatsat(reply)
            assert places["status"] == "OK" and len(places["results"]) == 1 + i % 5, places
        asked = fake.requests()[before:]
        assert len(asked) == 1, f"{len(asked)} upstream requests for 20 identical lookups"
        assert json.loads(asked[0]["body"])["maxResultCount"] == 5
    finally:
        herd.stop()


def concurrency_cap_and_reuse(server):
    fake = Fake(binary_arg("fake-places"), "--delay-ms", "300")
    herd = solo(server, "google", fake.url(NEW_PATH, "slow"), extra="max_concurrent = 2\n").start()
    try:
        lines = []
        for i in range(6):
            lines += [f"IAMAT cap{i}.example +{10 + i}-100 {now()}", f"WHATSAT cap{i}.example 10 1"]
        threads = [threading.Thread(target=herd.send, args=("Solo", *lines[2 * i:2 * i + 2])) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        asked = sorted(q["received_ms"] for q in fake.requests())
        assert len(asked) == 6, asked
        # two at a time: the third waits for the first answer, 300 ms later
        for i in range(2, 6):
            assert asked[i] - asked[i - 2] >= 290, asked
        # later lookups reuse the connections rather than opening new ones
        connections = {q["connection"] for q in fake.requests()}
        assert len(connections) <= 2, connections
    finally:
        herd.stop()
        fake.stop()


def hanging_upstream_does_not_hold_iamat(server, fake):
    herd = solo(server, "google", fake.url(NEW_PATH, "hang"), timeout_ms=5000).start()
    try:
        herd.send("Solo", f"IAMAT hang.example {UCLA} {now()}")
        waiting = []
        for _ in range(10):
            s = socket.create_connection(("127.0.0.1", herd.ports["Solo"]), timeout=10)
            s.sendall(b"WHATSAT hang.example 10 5\n")
            waiting.append(s)
        wait_until(lambda: len(fake.requests()) >= 1, 5, "the lookup to reach upstream")
        for i in range(50):
            assert herd.send("Solo", f"IAMAT busy{i}.example {UCLA} {now()}").startswith("AT Solo")
        for s in waiting:  # still waiting for upstream when every IAMAT was answered
            s.setblocking(False)
            try:
                assert s.recv(1) == b"", "a WHATSAT answered before its upstream did"
            except BlockingIOError:
                pass
            s.setblocking(True)
        for s in waiting:
            data = b""
            while not data.endswith(b"\n\n"):
                data += s.recv(65536)
            _, places = split_whatsat(data.decode())
            assert places["status"] == "UNKNOWN_ERROR" and "timed out" in places["error_message"]
            s.close()
    finally:
        herd.stop()


def bound_zero_asks_nothing(server, fake):
    herd = solo(server, "google", fake.url(NEW_PATH)).start()
    try:
        before = len(fake.requests())
        _, places = whatsat(herd, client="zero.example", bound=0)
        assert places["results"] == [] and places["status"] == "ZERO_RESULTS", places
        assert len(fake.requests()) == before
    finally:
        herd.stop()


def missing_key_refuses_to_start(server, fake):
    herd = solo(server, "google", fake.url(NEW_PATH), key=None)
    args = [server, "--config", herd.config, "Solo"]
    env = dict(os.environ)
    env.pop("GOOGLE_PLACES_API_KEY", None)
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=10)
    assert result.returncode != 0 and "GOOGLE_PLACES_API_KEY" in result.stderr, result
    env["MY_KEY"] = KEY
    herd2 = solo(server, "google", fake.url(NEW_PATH), extra='api_key_env = "MY_KEY"\n', key=None)
    herd2.env["MY_KEY"] = KEY
    herd2.start()
    try:
        _, places = whatsat(herd2)
        assert places["status"] == "OK"
    finally:
        herd2.stop()


def main():
    server = binary_arg("server")
    tap = Tap()
    fake = Fake(binary_arg("fake-places"), "--delay-ms", "300")
    try:
        tap.run("google (Places API New) end to end, translated into the legacy shape", new_api_end_to_end, server, fake)
        tap.run("google-legacy end to end, results trimmed and passed through", legacy_end_to_end, server, fake)
        tap.run("upstream faults give a prompt, well-formed answer; the key never leaks", faults_answer_cleanly, server, fake)
        tap.run("identical lookups in flight share one upstream request", identical_lookups_share_one_request, server, fake)
        tap.run("at most max_concurrent requests upstream; connections are reused", concurrency_cap_and_reuse, server)
        tap.run("a hanging upstream does not hold up IAMATs", hanging_upstream_does_not_hold_iamat, server, fake)
        tap.run("a bound of 0 asks nothing upstream", bound_zero_asks_nothing, server, fake)
        tap.run("a Google provider without a key refuses to start, naming the variable", missing_key_refuses_to_start, server, fake)
    finally:
        fake.stop()
    tap.finish()


if __name__ == "__main__":
    main()
