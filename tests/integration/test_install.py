#!/usr/bin/env python3
"""meson install: the programs, the places data, the man pages and the systemd unit land
under DESTDIR, and the installed herd-server answers WHATSAT from its installed data.

usage: test_install.py --build-root DIR --prefix P --bindir B --datadir D --mandir M
                       --unit-dir U --places-data FILE|none
(the directories as meson has them; --places-data: the data the build installs, if any)
"""

import filecmp
import os
import re
import shutil
import signal
import socket
import subprocess

from herdtest import Skip, Tap, binary_arg, exchange, free_ports, now, scratch_dir, split_whatsat, wait_until

UCLA = "+34.068930-118.445127"


def places_data():
    """The data file the build installs, or None."""
    path = binary_arg("places-data")
    return None if path == "none" else path


def under(root, path):
    return os.path.join(root, path.lstrip("/"))


def meson_install(build_root):
    """`meson install --destdir` into a new scratch directory; returns the directory."""
    destdir = scratch_dir("herd-install-")
    result = subprocess.run(["meson", "install", "-C", build_root, "--no-rebuild", "--destdir", destdir],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return destdir


class Layout:
    def __init__(self, destdir):
        prefix = binary_arg("prefix")
        at = lambda key: os.path.join(prefix, binary_arg(key))  # noqa: E731 (absolute keys stay absolute)
        self.bindir = at("bindir")
        self.server = under(destdir, os.path.join(self.bindir, "herd-server"))
        self.herdctl = under(destdir, os.path.join(self.bindir, "herdctl"))
        self.data = under(destdir, os.path.join(at("datadir"), "herd", "cities.pbf"))
        mandir = under(destdir, at("mandir"))
        self.man = [os.path.join(mandir, "man1", page) for page in ("herd-server.1", "herdctl.1")]
        self.unit = under(destdir, os.path.join(binary_arg("unit-dir"), "herd@.service"))


def files_installed(build_root):
    destdir = meson_install(build_root)
    layout = Layout(destdir)
    for program in (layout.server, layout.herdctl):
        assert os.access(program, os.X_OK), f"{program} is not installed"
    for page in layout.man:
        assert os.path.isfile(page), f"{page} is not installed"
    with open(layout.unit) as f:
        unit = f.read()
    expected = f"ExecStart={layout.bindir}/herd-server --config /etc/herd/herd.toml %i\n"
    assert expected in unit, f"{layout.unit} has no line {expected!r}:\n{unit}"
    assert "\nExecReload=/bin/kill -HUP $MAINPID\n" in unit, unit  # systemctl reload: SIGHUP
    assert "@bindir@" not in unit, unit
    source_data = places_data()
    if not source_data:
        raise Skip("the build has no places data to install (tools/dev setup fetches it)")
    assert filecmp.cmp(source_data, layout.data, shallow=False), f"{layout.data} is not {source_data}"
    listing = sorted(os.path.relpath(os.path.join(d, f), destdir)
                     for d, _, files in os.walk(destdir) for f in files)
    for path in listing:
        print(f"# installed: /{path}", flush=True)


def start(server, cwd, env=None):
    """herd-server A from `cwd`, with a config that leaves [places] data unset."""
    port, peer_port = free_ports(2)
    with open(os.path.join(cwd, "herd.toml"), "w") as f:
        f.write(f'[log]\ndir = "logs"\n\n[servers.A]\nport = {port}\npeer_port = {peer_port}\n')
    proc = subprocess.Popen([server, "--config", "herd.toml", "A"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, port


def installed_server_uses_installed_data(build_root):
    if not places_data():
        raise Skip("the build has no places data to install (tools/dev setup fetches it)")
    layout = Layout(meson_install(build_root))
    cwd = scratch_dir("herd-elsewhere-")  # outside the source tree
    proc, port = start(layout.server, cwd)
    try:
        def up():
            try:
                exchange(port, "")
                return True
            except OSError:
                assert proc.poll() is None, f"herd-server exited: {proc.communicate()}"
                return False
        wait_until(up, 15, "the installed herd-server to listen")
        exchange(port, f"IAMAT kiwi.cs.ucla.edu {UCLA} {now()}\n")
        at_line, places = split_whatsat(exchange(port, "WHATSAT kiwi.cs.ucla.edu 10 3\n"))
        assert at_line.startswith("AT A "), at_line
        assert places["status"] == "OK" and len(places["results"]) == 3, places
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The file it read was the installed one: emptied, the server names it and refuses to start.
    open(layout.data, "w").close()
    proc, _ = start(layout.server, cwd)
    try:
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and f"{layout.data}: empty file" in err, (proc.returncode, err)


def tells_systemd_when_ready(build_root):
    """Type=notify: READY=1 on $NOTIFY_SOCKET (a path, or @ for an abstract socket) once the
    server listens."""
    layout = Layout(meson_install(build_root))
    cwd = scratch_dir("herd-notify-")
    for name in (os.path.join(cwd, "notify"), f"@herd-test-notify-{os.getpid()}"):
        manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        manager.bind("\0" + name[1:] if name.startswith("@") else name)
        manager.settimeout(15)
        proc, port = start(layout.server, cwd, env=dict(os.environ, NOTIFY_SOCKET=name))
        try:
            assert manager.recv(4096) == b"READY=1", name
            socket.create_connection(("127.0.0.1", port), timeout=5).close()  # listening by then
        finally:
            manager.close()
            proc.kill()
            proc.wait()


def man_pages_format_cleanly(build_root):
    if not shutil.which("man"):
        raise Skip("no man program")
    layout = Layout(meson_install(build_root))
    for page, name in zip(layout.man, ("herd-server", "herdctl")):
        result = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page], capture_output=True,
                                text=True, timeout=30, env=dict(os.environ, MANWIDTH="80"))
        assert result.returncode == 0 and result.stderr == "", (page, result.stderr)
        text = re.sub(r"\s+", " ", re.sub(r".\x08", "", result.stdout))  # no overstrike, no justification
        assert f"NAME {name} - " in text, text[:400]


def main():
    build_root = binary_arg("build-root")
    tap = Tap()
    tap.run("meson install puts the programs, the places data, the man pages and the unit",
            files_installed, build_root)
    tap.run("the installed herd-server, run elsewhere, answers WHATSAT from the installed data",
            installed_server_uses_installed_data, build_root)
    tap.run("herd-server tells systemd it is ready once it listens (Type=notify)",
            tells_systemd_when_ready, build_root)
    tap.run("the installed man pages format without warnings", man_pages_format_cleanly, build_root)
    tap.finish()


if __name__ == "__main__":
    main()
