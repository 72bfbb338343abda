"""Start an nsqd (or nsqlookupd) binary on ephemeral loopback ports for one test.

The binaries come from $NSQD_BIN (default: target/debug/nsqd in the repository)
and $NSQLOOKUPD_BIN (default: nsqlookupd next to the nsqd binary).
Ports are never chosen by the test: the daemon binds 127.0.0.1:0 and the real
ports are read from its "TCP: listening on" / "HTTP: listening on" stderr lines,
so parallel runs and a developer's own daemons on the default ports cannot collide.
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

_LISTEN_RE = re.compile(r"\b(TCP|HTTP): listening on (\S+):(\d+)")


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
        self._ports_ready.wait(self.startup_timeout)
        if not (self.tcp_port and self.http_port):
            try:
                code = self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            why = (
                "exited with code %d" % code
                if code is not None
                else "did not report its TCP and HTTP ports within %.1fs" % self.startup_timeout
            )
            raise RuntimeError(
                "%s (%s) %s; stderr:\n%s" % (self.name, self.binary, why, self.log_text())
            )
        return self

    def _drain_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._log_lock:
                self._log.append(line)
            m = _LISTEN_RE.search(line)
            if m:
                if m.group(1) == "TCP":
                    self.tcp_port = int(m.group(3))
                else:
                    self.http_port = int(m.group(3))
                if self.tcp_port and self.http_port:
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

    def _args(self):
        self.data_path = tempfile.mkdtemp(prefix="nsqd-interop-")
        return [
            "--tcp-address=127.0.0.1:0",
            "--http-address=127.0.0.1:0",
            "--data-path=%s" % self.data_path,
        ]

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
