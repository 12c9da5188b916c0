#!/usr/bin/env python3
"""`systemd-analyze verify` on the systemd unit as `meson install --destdir` installs it, with
its herd-server and man page seen through DESTDIR. Exits 0 when systemd-analyze finds nothing,
1 when it finds something, 77 (skipped) when systemd-analyze is missing or cannot verify units
here (some containers).

usage: verify_unit.py --build-root DIR --prefix P --bindir B --mandir M --unit-dir U
"""

import os
import shutil
import subprocess
import sys
import tempfile

from herdtest import binary_arg


def under(root, path):
    return os.path.join(root, path.lstrip("/"))


def verify(unit, env=None):
    """systemd-analyze verify UNIT from the unit's directory: (exit status, its output)."""
    result = subprocess.run(["systemd-analyze", "verify", os.path.basename(unit)], cwd=os.path.dirname(unit),
                            capture_output=True, text=True, timeout=60, env=env)
    return result.returncode, (result.stdout + result.stderr).strip()


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def main():
    if not shutil.which("systemd-analyze"):
        skip("no systemd-analyze (Debian package systemd)")
    build_root = binary_arg("build-root")
    prefix = binary_arg("prefix")
    bindir = os.path.join(prefix, binary_arg("bindir"))
    mandir = os.path.join(prefix, binary_arg("mandir"))
    with tempfile.TemporaryDirectory(prefix="herd-unit-") as scratch:
        # The tool has to pass a good unit silently and fail a bad one here, or its verdict
        # on ours means nothing.
        probes = os.path.join(scratch, "probes")
        os.mkdir(probes)
        for name, program in (("good", "/bin/sh"), ("bad", "/nonexistent/herd-server")):
            with open(os.path.join(probes, f"herd-probe-{name}.service"), "w") as f:
                f.write(f"[Service]\nExecStart={program} -c true\n")
        good, good_out = verify(os.path.join(probes, "herd-probe-good.service"))
        bad, _ = verify(os.path.join(probes, "herd-probe-bad.service"))
        if good != 0 or good_out or bad == 0:
            skip(f"systemd-analyze cannot verify units here (a good unit: {good} {good_out!r}; a bad one: {bad})")

        destdir = os.path.join(scratch, "destdir")
        result = subprocess.run(["meson", "install", "-C", build_root, "--no-rebuild", "--destdir", destdir],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            print(result.stdout + result.stderr)
            return 1
        installed = under(destdir, os.path.join(binary_arg("unit-dir"), "herd@.service"))
        with open(installed) as f:
            unit = f.read()
        # Only the program's path moves into DESTDIR; the rest is the unit as installed.
        seen = unit.replace(f"ExecStart={bindir}/", f"ExecStart={under(destdir, bindir)}/")
        assert seen != unit, f"no ExecStart={bindir}/ in {installed}"
        units = os.path.join(scratch, "units")
        os.mkdir(units)
        with open(os.path.join(units, "herd@.service"), "w") as f:
            f.write(seen)
        env = dict(os.environ, MANPATH=under(destdir, mandir))  # Documentation=man:herd-server(1)
        status, output = 0, []
        for name in ("herd@.service", "herd@Goloman.service"):
            code, out = verify(os.path.join(units, name), env)
            print(f"systemd-analyze verify {name}: exit {code}" + (f"\n{out}" if out else ", no output"))
            if code != 0 or out:
                status = 1
        return status


if __name__ == "__main__":
    sys.exit(main())
