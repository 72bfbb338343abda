"""Start an nsqd (or nsqlookupd) binary on ephemeral loopback ports for one test.

The binaries come from $NSQD_BIN (default: target/debug/nsqd in the repository)
and $NSQLOOKUPD_BIN (default: nsqlookupd next to the nsqd binary).
Ports are never chosen by the test: the daemon binds 127.0.0.1:0 and the real
ports are read from its "TCP: listening on" / "HTTP: listening on" stderr lines,
so parallel runs and a developer's own daemons on the default ports cannot collide.

With TLS (`--tls-cert` among the extra args) nsqd also opens its HTTPS listener;
the harness then binds it to 127.0.0.1:0 as well (unless the test passes its own
`--https-address`) and waits for the "HTTPS: listening on" line too.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

_LISTEN_RE = re.compile(r"\b(TCP|HTTPS|HTTP): listening on (\S+):(\d+)")


def _has_flag(args, name):
    """Whether Go-style flag `name` (e.g. "tls-cert") is among `args`, in any spelling."""
    for a in args:
        bare = a.lstrip("-")
        if a.startswith("-") and (bare == name or bare.startswith(name + "=")):
            return True
    return False


def nsqd_binary():
    path = os.environ.get("NSQD_BIN") or os.path.join(REPO_ROOT, "target", "debug", "nsqd")
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def nsqlookupd_binary():
    path = os.environ.get("NSQLOOKUPD_BIN") or os.path.join(
        os.path.dirname(nsqd_binary()), "nsqlookupd"
    )
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


class _DaemonProcess:
    """A daemon on 127.0.0.1:0 whose stderr is drained for its whole life."""

    name = "daemon"
    build_hint = ""

    def __init__(self, binary, extra_args=(), startup_timeout=10.0):
        self.binary = binary
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise RuntimeError(
                "%s binary not found or not executable at %s (%s)"
                % (self.name, self.binary, self.build_hint)
            )
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.proc = None
        self.tcp_port = None
        self.http_port = None
        self.https_port = None
        # Set by subclasses whose daemon is expected to open an HTTPS listener.
        self.expect_https = False
        self._log = []
        self._log_lock = threading.Lock()
        self._ports_ready = threading.Event()
        self._reader = None

    @property
    def tcp_address(self):
        return "127.0.0.1:%d" % self.tcp_port

    @property
    def http_address(self):
        return "127.0.0.1:%d" % self.http_port

    @property
    def https_address(self):
        return "127.0.0.1:%d" % self.https_port

    def _ports_known(self):
        return bool(self.tcp_port and self.http_port and (self.https_port or not self.expect_https))

    def log_text(self):
        with self._log_lock:
            return "".join(self._log)

    def _args(self):
        raise NotImplementedError

    def _cleanup(self):
        pass

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary] + self._args() + self.extra_args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # stderr must be drained for the whole life of the process, otherwise a
        # chatty daemon blocks on a full pipe and the test hangs for no reason.
        self._reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._reader.start()
        self._wait_for_ports()
        if not self._ports_known():
            try:
                code = self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            why = (
                "exited with code %d" % code
                if code is not None
                else "did not report its %s ports in time" % ("TCP, HTTP and HTTPS" if self.expect_https else "TCP and HTTP")
            )
            raise RuntimeError(
                "%s (%s) %s; stderr:\n%s" % (self.name, self.binary, why, self.log_text())
            )
        return self

    def _wait_for_ports(self):
        # The listeners are all bound before the daemon logs any of them, so
        # once TCP and HTTP are known a missing HTTPS line is not coming.
        deadline = time.monotonic() + self.startup_timeout
        grace_until = None
        while not self._ports_ready.is_set():
            now = time.monotonic()
            if self.tcp_port and self.http_port:
                grace_until = grace_until or now + 3.0
                if now >= grace_until:
                    return
            if now >= deadline:
                return
            self._ports_ready.wait(0.05)

    def _drain_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._log_lock:
                self._log.append(line)
            m = _LISTEN_RE.search(line)
            if m:
                if m.group(1) == "TCP":
                    self.tcp_port = int(m.group(3))
                elif m.group(1) == "HTTPS":
                    self.https_port = int(m.group(3))
                else:
                    self.http_port = int(m.group(3))
                if self._ports_known():
                    self._ports_ready.set()
        # EOF: unblock a waiting start() so it reports the failure immediately.
        self._ports_ready.set()

    def stop(self, timeout=5.0):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(2.0)
        self._cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class NsqdProcess(_DaemonProcess):
    """nsqd with a temporary --data-path."""

    name = "nsqd"
    build_hint = "build it with `cargo build -p nsqd` or set NSQD_BIN"

    def __init__(self, extra_args=(), startup_timeout=10.0):
        super().__init__(nsqd_binary(), extra_args, startup_timeout)
        self.data_path = None
        self.expect_https = _has_flag(self.extra_args, "tls-cert")

    def _args(self):
        self.data_path = tempfile.mkdtemp(prefix="nsqd-interop-")
        args = [
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
            "--data-path=%s" % self.data_path,
        ]
        if self.expect_https and not _has_flag(self.extra_args, "https-address"):
            # The default HTTPS address is 0.0.0.0:4152: keep it on loopback and ephemeral.
            args.append("--https-address=127.0.0.1:0")
        return args

    def _cleanup(self):
        if self.data_path:
            shutil.rmtree(self.data_path, ignore_errors=True)
            self.data_path = None


class NsqlookupdProcess(_DaemonProcess):
    """nsqlookupd announcing 127.0.0.1 (the address nsqd uses for its /channels queries)."""

    name = "nsqlookupd"
    build_hint = "build it with `cargo build --bins` or set NSQLOOKUPD_BIN"

    def __init__(self, extra_args=(), startup_timeout=10.0):
        super().__init__(nsqlookupd_binary(), extra_args, startup_timeout)

    def _args(self):
        return [
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
            "--broadcast-address=127.0.0.1",
        ]
