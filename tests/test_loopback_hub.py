"""The loopback Hub's own behaviour as a server: a client that hangs up is normal and prints nothing, a bug of the
server prints its traceback (the Hub API it serves is tested through the client in test_hub.py)."""

import http.client
import socket
import struct
import time

import pytest

from hfmodels.testing import hub as hub_module
from hfmodels.testing.hub import LoopbackHub

HELD = 0.3  # seconds the hub holds the request before answering: the client is gone by then


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the loopback Hub did not get there in time"
        time.sleep(0.01)


def connection_to(hub: LoopbackHub) -> socket.socket:
    host, port = hub.server.server_address[:2]
    return socket.create_connection((host, port), timeout=10)


def hang_up(connection: socket.socket) -> None:
    """Closes with a reset (SO_LINGER 0), as a client that gives up does: the hub's next read or write fails."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


HALF_REQUESTS = {
    # the request is read, its answer held: the hub writes to a connection the client has reset
    "mid-answer": b"GET /api/whoami-v2 HTTP/1.1\r\nHost: hub\r\n\r\n",
    # the headers promise a body that never comes: the hub's read of it fails
    "mid-body": b"POST /api/repos/create HTTP/1.1\r\nHost: hub\r\nContent-Length: 100000\r\n\r\n{\"name\":",
}


@pytest.mark.parametrize("moment", HALF_REQUESTS)
def test_a_client_that_hangs_up_is_counted_and_prints_nothing(moment, capsys):
    with LoopbackHub() as hub:
        hub.fail("/api/whoami-v2", status=None, delay=HELD)
        connection = connection_to(hub)
        connection.sendall(HALF_REQUESTS[moment])
        wait_until(lambda: hub.in_flight == 1)  # the hub is inside the request (holding it, or reading its body)
        hang_up(connection)
        with hub.idle:
            assert hub.idle.wait_for(lambda: hub.disconnects == 1, timeout=10), "the disconnect was not counted"
        hub.wait_idle()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_broken_request_still_prints_its_traceback(capsys):
    """A chunked body whose chunk size is not hexadecimal: the hub cannot read it, and says so loudly."""
    with LoopbackHub() as hub:
        connection = connection_to(hub)
        connection.sendall(b"POST /api/repos/create HTTP/1.1\r\nHost: hub\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert connection.recv(1024) == b""  # no answer: the server closed the connection after printing
        connection.close()
        assert hub.disconnects == 0
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: invalid literal for int() with base 16" in err


def test_a_bug_in_the_hub_answers_500_and_prints_its_traceback(monkeypatch, capsys):
    def broken_route(hub, request):
        raise RuntimeError("a bug in the loopback Hub")

    monkeypatch.setattr(hub_module, "_route", broken_route)
    with LoopbackHub() as hub:
        client = http.client.HTTPConnection(*hub.server.server_address[:2], timeout=10)
        client.request("GET", "/api/whoami-v2")
        answer = client.getresponse()
        client.close()
    assert answer.status == 500
    assert answer.headers["X-Error-Message"] == "loopback Hub bug: RuntimeError('a bug in the loopback Hub')"
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug in the loopback Hub" in err
