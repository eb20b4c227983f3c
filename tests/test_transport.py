"""The upstream transport over real sockets: proxies and CA bundles from the environment, and what may be re-sent.

A recording forwarding proxy, a TLS server with a self-signed certificate and a raw socket server that
misbehaves on purpose (drops, stalls, truncates) all run in threads on 127.0.0.1. The gateway tests run
``create_app`` against the sandbox with ``HTTP_PROXY``/``NO_PROXY`` set while it is built (the transport
reads them once, at construction) and unset again, so that the test's own calls go direct. The CA bundle
comes through the config (``REQUESTS_CA_BUNDLE`` in the gateway's settings).
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import TICKET, free_port
from tests.servers import QuietHTTPHandler, Sandbox, Starter, ThreadedGateway, serve_in_thread, stop_server
from zoho_gateway.zoho.transport import NoAnswer, NotSent, Transport

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
SECRET_HEADER = {"Authorization": "Zoho-oauthtoken 1000.transport-test.secret"}


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without proxy or CA variables, whatever the machine has (lower case wins in urllib)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def transport(read_timeout: float = 2.0) -> Transport:
    return Transport(connect_timeout=1.0, read_timeout=read_timeout, maxsize=4)


# ---- a recording forwarding proxy ----------------------------------------------------------------


class _Forward(QuietHTTPHandler):
    """Forwards an absolute-URI request (``GET http://host:port/path``) and relays the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: RecordingProxy

    def _forward(self) -> None:
        self.server.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = urlsplit(self.path)
        hop_by_hop = {"connection", "proxy-connection", "keep-alive", "proxy-authorization", "host"}
        headers = {name: value for name, value in self.headers.items() if name.lower() not in hop_by_hop}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=10)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {"connection", "transfer-encoding", "content-length", "date", "server"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _forward

    def do_CONNECT(self) -> None:
        """A tunnel (``CONNECT host:port``), as clients use a proxy for https: bytes relayed both ways."""
        self.server.seen.append((self.command, self.path))
        host, _, port = self.path.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            sockets = [self.connection, upstream]
            with selectors.DefaultSelector() as selector:
                for sock in sockets:
                    selector.register(sock, selectors.EVENT_READ)
                while True:
                    for key, _ in selector.select(timeout=10):
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            self.close_connection = True
                            return
                        (upstream if key.fileobj is self.connection else self.connection).sendall(data)


class RecordingProxy(ThreadingHTTPServer):
    """An HTTP forwarding proxy on a free port; ``seen`` lists (method, absolute URL) of what it forwarded."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.seen: list[tuple[str, str]] = []
        self.url = f"http://127.0.0.1:{self.server_port}"
        serve_in_thread(self)

    def paths(self) -> list[tuple[str, str]]:
        return [(method, urlsplit(url).path) for method, url in self.seen]


@pytest.fixture
def proxy() -> Iterator[RecordingProxy]:
    server = RecordingProxy()
    yield server
    stop_server(server)


@pytest.fixture
def gateway_built_with(
    make_gateway: Starter, monkeypatch: pytest.MonkeyPatch
) -> Starter:
    """Build a gateway with the given process environment variables, then unset them again."""

    def build(environment: dict[str, str], **settings: str) -> ThreadedGateway:
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        try:
            return make_gateway(**settings)
        finally:
            for name in environment:
                monkeypatch.delenv(name)

    return build


# ---- proxies from the environment ----------------------------------------------------------------


def test_the_gateway_reaches_zoho_through_http_proxy(
    gateway_built_with: Starter, proxy: RecordingProxy, sandbox: Sandbox
) -> None:
    gateway = gateway_built_with({"HTTP_PROXY": proxy.url})
    created = requests.post(f"{gateway.url}/requests", json=TICKET, timeout=15)
    assert created.status_code == 201, created.text
    ticket_id = created.json()["zoho_ticket_id"]
    assert requests.get(f"{gateway.url}/requests/{ticket_id}", timeout=15).status_code == 200
    assert {("POST", "/oauth/v2/token"), ("POST", "/api/v3/requests"), ("GET", f"/api/v3/requests/{ticket_id}")} <= set(
        proxy.paths()
    ), proxy.seen
    assert all(url.startswith(sandbox.url) for _, url in proxy.seen)  # absolute URIs: a forwarding proxy
    assert sandbox.stats()["creates"] == 1


def test_no_proxy_covering_zoho_goes_direct(
    gateway_built_with: Starter, proxy: RecordingProxy, sandbox: Sandbox
) -> None:
    gateway = gateway_built_with({"HTTP_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1"})
    created = requests.post(f"{gateway.url}/requests", json=TICKET, timeout=15)
    assert created.status_code == 201, created.text
    assert proxy.seen == []
    assert sandbox.stats()["creates"] == 1


def test_no_proxy_is_matched_per_host(
    gateway_built_with: Starter, proxy: RecordingProxy, sandbox: Sandbox
) -> None:
    # Tokens from 127.0.0.1 (exempt), tickets from "localhost" (the same sandbox, proxied).
    port = urlsplit(sandbox.url).port
    gateway = gateway_built_with(
        {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}, ZOHO_API_BASE_URL=f"http://localhost:{port}"
    )
    created = requests.post(f"{gateway.url}/requests", json=TICKET, timeout=15)
    assert created.status_code == 201, created.text
    assert proxy.seen == [("POST", f"http://localhost:{port}/api/v3/requests")]


def test_a_create_is_resent_when_the_proxy_cannot_be_reached(
    gateway_built_with: Starter, sandbox: Sandbox
) -> None:
    # The proxy's port is closed: no connection, so nothing left and the create may be tried again.
    port = urlsplit(sandbox.url).port
    gateway = gateway_built_with(
        {"HTTP_PROXY": f"http://127.0.0.1:{free_port()}", "NO_PROXY": "127.0.0.1"},
        ZOHO_API_BASE_URL=f"http://localhost:{port}",
    )
    answer = requests.post(f"{gateway.url}/requests", json=TICKET, timeout=15)
    assert answer.status_code == 503 and answer.json()["details"]["code"] == "zoho_unavailable", answer.text
    assert int(answer.headers["Retry-After"]) > 0
    metrics = requests.get(f"{gateway.url}/metrics", timeout=10).text
    not_sent = [line for line in metrics.splitlines() if 'outcome="not_sent"' in line and 'operation="create"' in line]
    assert not_sent and float(not_sent[0].rsplit(" ", 1)[1]) == 3, not_sent  # every attempt the policy allows
    assert sandbox.stats()["api_calls"] == 0


def test_the_environment_is_read_when_the_transport_is_built(
    proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    target = f"{sandbox.url}/_sandbox/stats"
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    proxied = Transport(connect_timeout=1.0, read_timeout=2.0, origins=[sandbox.url])
    monkeypatch.delenv("HTTP_PROXY")
    direct = transport()
    assert proxied.proxy_for(target) == proxy.url and direct.proxy_for(target) is None
    assert proxied.request("GET", target, headers={}).status == 200
    assert direct.request("GET", target, headers={}).status == 200
    assert proxy.paths() == [("GET", "/_sandbox/stats")]


# ---- TLS: the CA bundle from the environment; a refused certificate is NotSent -----------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zoho-gateway test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class _Hello(QuietHTTPHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.daemon_threads = True
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    serve_in_thread(server)
    yield f"https://127.0.0.1:{server.server_port}/"
    stop_server(server)


def test_an_untrusted_certificate_is_not_sent(tls_server: str) -> None:
    with pytest.raises(NotSent, match=r"127\.0\.0\.1.*certificate") as info:
        transport().request("GET", tls_server, headers=SECRET_HEADER)
    assert isinstance(info.value.__cause__, requests.exceptions.SSLError)


def test_requests_ca_bundle_is_honoured(
    tls_server: str, certificate: tuple[Path, Path], make_gateway: Starter
) -> None:
    # The TLS server answers "ok" to everything: nonsense to the gateway (502), once it trusts the server.
    zoho = tls_server.rstrip("/")
    refusing = make_gateway(ZOHO_API_BASE_URL=zoho)
    trusting = make_gateway(ZOHO_API_BASE_URL=zoho, REQUESTS_CA_BUNDLE=str(certificate[0]))
    for gateway, status, code in ((refusing, 503, "zoho_unavailable"), (trusting, 502, "zoho_bad_response")):
        answer = requests.get(f"{gateway.url}/requests/123", timeout=15)
        assert (answer.status_code, answer.json()["details"]["code"]) == (status, code), answer.text
    direct = Transport(connect_timeout=1.0, read_timeout=2.0, ca_bundle=str(certificate[0])).request(
        "GET", tls_server, headers={}
    )
    assert (direct.status, direct.body) == (200, b"ok")


def test_https_goes_through_https_proxy_as_a_tunnel(
    tls_server: str, certificate: tuple[Path, Path], proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    answer = Transport(connect_timeout=1.0, read_timeout=2.0, ca_bundle=str(certificate[0])).request(
        "GET", tls_server, headers=SECRET_HEADER
    )
    assert (answer.status, answer.body) == (200, b"ok")
    assert proxy.seen == [("CONNECT", urlsplit(tls_server).netloc)]  # the proxy saw a host, never the token


def test_tls_toward_a_plain_http_port_is_no_answer(proxy: RecordingProxy) -> None:
    # Some handshake failure, but not our refusal of a certificate: we cannot prove nothing was sent.
    with pytest.raises(NoAnswer):
        transport().request("GET", proxy.url.replace("http:", "https:"), headers={})


# ---- a server that misbehaves: what counts as sent ----------------------------------------------------


class RawServer:
    """Accepts connections and, per request, does ``behaviour``; ``requests`` counts requests it read whole."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api/v3/requests"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            if self.behaviour == "close_at_once":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return  # an RST, before reading anything
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            fields = dict(line.lower().split(b":", 1) for line in head.split(b"\r\n")[1:])
            length = int(fields.get(b"content-length", b"0"))
            while len(rest) < length:
                rest += conn.recv(65536)
            self.requests += 1
            if self.behaviour == "stall":
                self.stopped.wait(10)
            elif self.behaviour == "truncated":
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"request":')
            elif self.behaviour == "half_status":
                conn.sendall(b"HTTP/1.1 20")
            # "close_after_request": nothing; the connection closes when this block ends.

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[str], RawServer]]:
    started: list[RawServer] = []

    def start(behaviour: str) -> RawServer:
        started.append(RawServer(behaviour))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("behaviour", ["close_after_request", "stall", "truncated", "half_status"])
def test_a_post_that_reached_the_server_is_no_answer_and_sent_once(
    behaviour: str, raw_server: Callable[[str], RawServer]
) -> None:
    server = raw_server(behaviour)
    with pytest.raises(NoAnswer) as info:
        transport(read_timeout=0.5).request("POST", server.url, headers=SECRET_HEADER, body=b"input_data=%7B%7D")
    assert server.requests == 1  # neither requests nor urllib3 re-sent it on their own
    message = str(info.value)
    assert "127.0.0.1" in message and "/api/v3" not in message and "oauthtoken" not in message
    cause = info.value.__cause__
    assert isinstance(cause, requests.RequestException) and cause.request is None  # no token rides along


def test_a_connection_reset_before_reading_is_still_no_answer(raw_server: Callable[[str], RawServer]) -> None:
    # The connection was made, so the request may already sit in the server's buffer: not provably unsent.
    server = raw_server("close_at_once")
    with pytest.raises(NoAnswer):
        transport().request("POST", server.url, headers={}, body=b"x=1")


def test_a_refused_connection_is_not_sent() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/v3/requests"
    with pytest.raises(NotSent, match=r"^cannot connect to 127\.0\.0\.1$") as info:
        transport().request("POST", url, headers=SECRET_HEADER, body=b"x=1")
    cause = info.value.__cause__
    assert isinstance(cause, requests.ConnectionError) and cause.request is None


def test_an_unusable_url_is_not_sent() -> None:
    with pytest.raises(NotSent):
        transport().request("GET", "ftp://127.0.0.1/api/v3/requests", headers={})
