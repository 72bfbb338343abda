"""A tiny NSQ auth server (the `--auth-http-address` side) for the AUTH tests.

It listens on 127.0.0.1:0 in a background thread and answers /auth:

* secret GOOD_SECRET -> 200, identity "u", one authorization for every topic and
  channel with both permissions (the shape nsqd expects, tcp-protocol.md §7);
* secret SHORT_TTL_SECRET -> the same with "ttl": 1, so nsqd must ask again
  at the first check after a second;
* secret NO_PERMS_SECRET -> 200 with an empty authorization list, which nsqd
  turns into E_UNAUTHORIZED;
* any other secret -> 403, which nsqd turns into E_AUTH_FAILED.

Every request is recorded (method, path, query, headers, JSON body) so tests
can check exactly what nsqd sent for GET and POST.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

GOOD_SECRET = "good-secret"
NO_PERMS_SECRET = "no-perms-secret"
SHORT_TTL_SECRET = "short-ttl-secret"

ALLOW_ALL = {
    "ttl": 3600,
    "identity": "u",
    "identity_url": "",
    "authorizations": [{"topic": ".*", "channels": [".*"], "permissions": ["subscribe", "publish"]}],
}
SHORT_TTL = dict(ALLOW_ALL, ttl=1)
NO_AUTHORIZATIONS = {"ttl": 3600, "identity": "nobody", "identity_url": "", "authorizations": []}


class AuthRequest:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query  # {key: [values]} from the URL
        self.headers = headers  # {lower-case name: value}
        self.body = body  # parsed JSON for POST, else None

    def fields(self):
        """The four auth fields as {key: [values]}, wherever this method carries them."""
        return self.body if self.method == "POST" else self.query

    def secret(self):
        values = (self.fields() or {}).get("secret") or [None]
        return values[0]

    def __repr__(self):
        return "AuthRequest(%s %s query=%r body=%r)" % (self.method, self.path, self.query, self.body)


class AuthServer:
    def __init__(self):
        self.requests = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self, method):
                url = urlsplit(self.path)
                body = None
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    raw = self.rfile.read(length) if length else b""
                    try:
                        body = json.loads(raw.decode("utf-8")) if raw else None
                    except ValueError:
                        body = {"_unparsable": raw.decode("utf-8", "replace")}
                req = AuthRequest(
                    method,
                    url.path,
                    parse_qs(url.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with owner._lock:
                    owner.requests.append(req)
                secret = req.secret() if url.path == "/auth" else None
                if secret == GOOD_SECRET:
                    self._reply(200, ALLOW_ALL)
                elif secret == SHORT_TTL_SECRET:
                    self._reply(200, SHORT_TTL)
                elif secret == NO_PERMS_SECRET:
                    self._reply(200, NO_AUTHORIZATIONS)
                else:
                    self._reply(403, {"message": "FORBIDDEN"})

            def _reply(self, code, obj):
                data = json.dumps(obj).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def address(self):
        return "127.0.0.1:%d" % self._server.server_address[1]

    def recorded(self):
        with self._lock:
            return list(self.requests)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
