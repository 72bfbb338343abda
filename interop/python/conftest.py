import logging
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from nsqd_proc import NsqdProcess  # noqa: E402


GEN_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gen-certs.sh")


def _dump_log_on_failure(request, proc, label="nsqd"):
    # Surface nsqd's own log when a test fails: most interop failures are
    # explained by what the server logged about the client.
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n----- %s stderr (%s) -----\n%s\n" % (label, request.node.name, proc.log_text()[-8000:]))


@pytest.fixture
def nsqd(request):
    proc = NsqdProcess().start()
    yield proc
    proc.stop()
    _dump_log_on_failure(request, proc)


@pytest.fixture
def start_nsqd(request):
    """Factory: start_nsqd(*extra_args) -> a running NsqdProcess, stopped after the test."""
    procs = []

    def start(*extra_args):
        proc = NsqdProcess(extra_args=extra_args)
        procs.append(proc)
        return proc.start()

    yield start
    for i, proc in enumerate(procs):
        proc.stop()
        _dump_log_on_failure(request, proc, "nsqd #%d" % (i + 1))


class Certs:
    """Paths of the throw-away TLS material made by interop/gen-certs.sh."""

    def __init__(self, directory):
        self.dir = str(directory)
        for name in ("ca", "server", "client", "rogue"):
            setattr(self, name + "_pem", os.path.join(self.dir, name + ".pem"))
            if name != "ca":
                setattr(self, name + "_key", os.path.join(self.dir, name + ".key"))

    def server_args(self):
        return ["--tls-cert=%s" % self.server_pem, "--tls-key=%s" % self.server_key]


def _make_certs(tmp_path_factory, key_type):
    directory = tmp_path_factory.mktemp("certs-" + key_type)
    env = dict(os.environ, CERT_KEY_TYPE=key_type)
    res = subprocess.run(
        ["bash", GEN_CERTS, str(directory)], env=env, capture_output=True, text=True, timeout=60
    )
    if res.returncode != 0:
        raise RuntimeError("gen-certs.sh failed (%d):\n%s%s" % (res.returncode, res.stdout, res.stderr))
    return Certs(directory)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """CA, server, client and rogue certificates with RSA keys (PKCS#8)."""
    return _make_certs(tmp_path_factory, "rsa")


@pytest.fixture(scope="session")
def ec_certs(tmp_path_factory):
    """The same set with ECDSA P-256 keys (SEC1 "EC PRIVATE KEY" PEM)."""
    return _make_certs(tmp_path_factory, "ec")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_configure(config):
    logging.getLogger("nsq").setLevel(logging.INFO)
