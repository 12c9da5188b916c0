"""Config reload (SIGHUP, herdctl reload): a herd grown from three servers to five and shrunk
back without restarting anyone; reloads refused for a changed own port and an invalid file."""

import os
import re
import signal
import subprocess
import urllib.request

from herdtest import Herd, Tap, binary_arg, free_ports, now, split_whatsat, wait_until

THREE = {"Alpha": ["Beta"], "Beta": ["Gamma"], "Gamma": []}
# Delta and Eps join, each linked with two of the first three and with each other.
FIVE = {"Alpha": ["Beta"], "Beta": ["Gamma"], "Gamma": [],
        "Delta": ["Alpha", "Gamma"], "Eps": ["Delta", "Beta"]}


class ReloadHerd(Herd):
    """A herd whose servers all have a metrics port, and whose file can be rewritten."""

    def __init__(self, server, herdctl, links, **kw):
        super().__init__(server, links=links, **kw)
        self.herdctl = herdctl
        self.metrics_ports = dict(zip(self.names, free_ports(len(self.names))))
        self.rewrite(links)

    def rewrite(self, links, overrides=None):
        """Writes the herd's file with only `links`' servers (ports as first allocated)."""
        self.links = links
        keys = {name: {"metrics_port": self.metrics_ports[name]} for name in links}
        for name, extra in (overrides or {}).items():
            keys[name].update(extra)
        self.write_config(self.config, keys)

    def reload(self, *names):
        result = subprocess.run([self.herdctl, "--config", self.config, "reload", *names],
                                capture_output=True, text=True, timeout=60)
        return result.returncode, result.stdout + result.stderr

    def metrics(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=5) as r:
            return r.read().decode()

    def links_up(self, name):
        """{neighbor: 1 or 0} as /metrics has it."""
        return {m[1]: int(float(m[2])) for m in
                re.finditer(r'^herd_link_up\{neighbor="([^"]+)"\} (\S+)$', self.metrics(name), re.M)}

    def reloads(self, name, result):
        m = re.search(rf'^herd_config_reloads_total\{{result="{result}"\}} (\S+)$', self.metrics(name), re.M)
        assert m, self.metrics(name)
        return int(float(m[1]))

    def pids(self):
        return {name: proc.pid for name, proc in self.procs.items() if proc.poll() is None}

    def knows(self, name, client):
        reply = self.send(name, f"WHATSAT {client} 1 1")
        return None if reply.startswith("? ") else split_whatsat(reply)[0]


def grow_to_five_and_shrink_back(server, herdctl):
    herd = ReloadHerd(server, herdctl, FIVE)
    herd.rewrite(THREE)
    herd.start("Alpha", "Beta", "Gamma")
    try:
        herd.wait_linked()
        assert herd.links_up("Alpha") == {"Beta": 1}
        herd.send("Alpha", f"IAMAT before.example +1+1 {now()}")
        wait_until(lambda: herd.knows("Gamma", "before.example"), 10, "before.example at Gamma")
        pids = herd.pids()

        herd.rewrite(FIVE)
        assert herd.reload("Delta") == (1, f"Delta: not running on this machine (no {herd.dir}/logs/Delta.pid)\n")
        herd.start("Delta", "Eps")
        code, out = herd.reload("Alpha", "Beta")
        assert code == 0, out
        assert out == "Alpha: reloaded: neighbors: +Delta\nBeta: reloaded: neighbors: +Eps\n", out
        # Gamma the plain way: the signal itself.
        os.kill(herd.procs["Gamma"].pid, signal.SIGHUP)
        wait_until(lambda: "server - config reloaded: neighbors: +Delta" in herd.log("Gamma"), 10,
                   "Gamma's reload")
        herd.wait_linked()
        assert herd.links_up("Alpha") == {"Beta": 1, "Delta": 1}, herd.metrics("Alpha")
        assert herd.links_up("Gamma") == {"Beta": 1, "Delta": 1}, herd.metrics("Gamma")
        assert herd.links_up("Eps") == {"Beta": 1, "Delta": 1}, herd.metrics("Eps")
        status = subprocess.run([herdctl, "--config", herd.config, "status"], capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert re.search(r"^Beta +\S+ +ok +3/3 ", status.stdout, re.M), status.stdout

        # The record from before the growth reached Eps by catch-up; one at Eps floods to Alpha.
        wait_until(lambda: herd.knows("Eps", "before.example"), 10, "before.example at Eps")
        herd.send("Eps", f"IAMAT after.example +2+2 {now()}")
        wait_until(lambda: herd.knows("Alpha", "after.example"), 10, "after.example at Alpha")
        assert herd.knows("Alpha", "after.example").startswith("AT Eps ")

        herd.rewrite(THREE)
        code, out = herd.reload("Alpha", "Beta", "Gamma")
        assert code == 0, out
        assert out == ("Alpha: reloaded: neighbors: -Delta\nBeta: reloaded: neighbors: -Eps\n"
                       "Gamma: reloaded: neighbors: -Delta\n"), out
        for name in ("Alpha", "Gamma"):
            assert herd.links_up(name) == {"Beta": 1}, herd.metrics(name)
        assert herd.links_up("Beta") == {"Alpha": 1, "Gamma": 1}, herd.metrics("Beta")
        # Eps, not reloaded, keeps Beta in its config, but only Beta dialed that link.
        wait_until(lambda: herd.links_up("Eps") == {"Beta": 0, "Delta": 1}, 10, "Eps to lose Beta")
        assert "peer Delta - link down: removed from the config" in herd.log("Alpha")
        # Delta, not reloaded, redials Gamma (its name sorts first): Gamma refuses it now.
        wait_until(lambda: "it says it is Delta, which is not a neighbor of Gamma" in herd.log("Gamma"),
                   10, "Gamma to refuse Delta")
        herd.send("Alpha", f"IAMAT late.example +3+3 {now()}")
        wait_until(lambda: herd.knows("Gamma", "late.example"), 10, "late.example at Gamma")
        assert not herd.knows("Delta", "late.example") and not herd.knows("Eps", "late.example")
        assert herd.reloads("Alpha", "ok") == 2 and herd.reloads("Alpha", "refused") == 0

        # Delta back at Alpha: Alpha remembers where Delta's catch-up stopped, so Delta sends
        # only what changed since, not its whole store again.
        herd.rewrite(FIVE)
        code, out = herd.reload("Alpha")
        assert out == "Alpha: reloaded: neighbors: +Delta\n", out
        sending = lambda: [l for l in herd.log("Delta").splitlines() if "peer Alpha - catch-up: sending" in l]
        wait_until(lambda: len(sending()) == 2, 10, "Delta's second catch-up to Alpha")
        # (Alpha's SINCE names Delta's epoch: its resume point, even at 0 changes, was kept)
        assert "(it said SINCE - 0)" in sending()[0] and "(it said SINCE - 0)" not in sending()[1], sending()
        assert herd.pids() == dict(pids, Delta=herd.procs["Delta"].pid, Eps=herd.procs["Eps"].pid), \
            "a server restarted or exited"
    finally:
        herd.stop()


def refused_reloads_keep_the_config(server, herdctl):
    links = {"Alpha": ["Beta"], "Beta": [], "Gamma": []}
    herd = ReloadHerd(server, herdctl, links)
    herd.start("Alpha", "Beta")
    try:
        herd.wait_linked()
        pid = herd.procs["Alpha"].pid
        new_port = free_ports(1)[0]
        # Its own port and a link at once: all or nothing.
        herd.rewrite({"Alpha": [], "Beta": [], "Gamma": []}, {"Alpha": {"port": new_port}})
        code, out = herd.reload("Alpha")
        assert code == 1, out
        assert out == (f"Alpha: refused: needs a restart: servers.Alpha.port {herd.ports['Alpha']} -> "
                       f"{new_port}\n"), out
        assert f"config reload refused: needs a restart: servers.Alpha.port" in herd.log("Alpha")

        with open(herd.config, "a") as f:
            f.write("\n[servers.Alpha]\nport = 1\n")  # a second table of the same name
        # herdctl reads the file too, and stops at the error before signalling anyone.
        code, out = herd.reload("Alpha")
        assert code == 2 and "cannot redefine existing table 'servers.Alpha'" in out, out
        assert herd.log("Alpha").count("config reload refused") == 1
        herd.procs["Alpha"].send_signal(signal.SIGHUP)
        wait_until(lambda: re.search(rf"server - config reload refused: {re.escape(herd.config)}:\d+:\d+: "
                                     r"syntax: .*servers\.Alpha.*; keeping the running config\n", herd.log("Alpha")),
                   10, "the invalid file refused")

        # Still the old config: its port, its link to Beta, flooding on it.
        herd.send("Alpha", f"IAMAT kept.example +1+1 {now()}")
        wait_until(lambda: herd.knows("Beta", "kept.example"), 10, "kept.example at Beta")
        assert herd.links_up("Alpha") == {"Beta": 1}
        assert herd.reloads("Alpha", "refused") == 2 and herd.reloads("Alpha", "ok") == 0

        # The log level changes in place: at debug, the lines to neighbors are logged.
        herd.head = herd.head.replace('dir = "logs"\n', 'dir = "logs"\nlevel = "debug"\n')
        herd.rewrite(links)
        code, out = herd.reload("Alpha")
        assert (code, out) == (0, "Alpha: reloaded: log level debug\n"), out
        herd.send("Alpha", f"IAMAT debug.example +1+1 {now()}")
        wait_until(lambda: re.search(r"peer Beta > PUT \d+ AT Alpha \S+ debug\.example", herd.log("Alpha")),
                   10, "a PUT in the debug log")

        # Gamma never started; then a pid file left by something that is not herd-server Gamma.
        code, out = herd.reload("Gamma")
        assert code == 1 and out.startswith("Gamma: not running on this machine (no "), out
        with open(os.path.join(herd.dir, "logs", "Gamma.pid"), "w") as f:
            f.write(f"{os.getpid()}\n")
        code, out = herd.reload("Gamma")
        assert code == 1 and f"not running (process {os.getpid()} of " in out, out
        assert herd.procs["Alpha"].poll() is None and herd.procs["Alpha"].pid == pid
        assert herd.kill("Alpha", signal.SIGTERM) == 0
        assert not os.path.exists(os.path.join(herd.dir, "logs", "Alpha.pid"))
    finally:
        herd.stop()


def main():
    server = binary_arg("server")
    herdctl = binary_arg("herdctl")
    tap = Tap()
    tap.run("reload: a herd of three grows to five and back, nobody restarts",
            grow_to_five_and_shrink_back, server, herdctl)
    tap.run("reload: a changed own port or an invalid file is refused; the log level changes",
            refused_reloads_keep_the_config, server, herdctl)
    tap.finish()


if __name__ == "__main__":
    main()
