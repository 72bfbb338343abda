import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from nsqd_proc import NsqdProcess  # noqa: E402


@pytest.fixture
def nsqd(request):
    proc = NsqdProcess().start()
    yield proc
    proc.stop()
    # Surface nsqd's own log when a test fails: most interop failures are
    # explained by what the server logged about the client.
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n----- nsqd stderr (%s) -----\n%s\n" % (request.node.name, proc.log_text()[-8000:]))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def pytest_configure(config):
    logging.getLogger("nsq").setLevel(logging.INFO)
