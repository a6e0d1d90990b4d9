"""Clients that cost memory by being slow or by not reading (issue 28): each costs the workers a
bounded, declared amount, the stack keeps answering /healthz, and nothing partial is stored.

Memory is the gunicorn workers' VmRSS (/proc/PID/status). The clients come from several loopback
addresses (127.0.0.N), as clients behind different addresses would: nginx's per-address limits
(LAB_LIMIT_CONN_UPLOAD, LAB_LIMIT_CONN_WS) are not what these tests measure."""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import ssl
import termios
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import websocket

import labsettings
from labctl.procs import environment, rss_kib
from support.lab import Lab

from . import report, stackctl
from .rawhttp import exchange, parse_response, read_until_close, tls_socket

MIB = 1024 * 1024


def workers_rss_mib() -> dict[int, float]:
    return {pid: rss_kib(pid) / 1024 for pid in stackctl.children(stackctl.gunicorn_master())}


def growth_mib(before: dict[int, float], now: dict[int, float]) -> float:
    """The workers' VmRSS now less before, summed (a worker that was not there before: all of it)."""
    return sum(rss - before.get(pid, 0.0) for pid, rss in now.items())


def healthz_seconds(lab: Lab) -> float:
    """Seconds /healthz took on a fresh connection; fails the test if it did not answer 200."""
    started = time.monotonic()
    try:
        response = requests.get(lab.url + "/healthz", verify=str(lab.ca), timeout=5)
    except requests.RequestException as error:
        raise AssertionError(
            f"/healthz did not answer within 5 s under the hostile clients: {error}"
        ) from None
    assert response.status_code == 200, f"/healthz answered {response.status_code} under the hostile clients"
    return time.monotonic() - started


TRICKLERS = 300
SOURCES = 10  # 30 uploads from each address
TRICKLE_S = 8  # a byte a second each: below client_body_timeout (10 s) between two reads
DECLARED = 4096  # each upload's Content-Length: never reached
GROWTH_LIMIT_MIB = 32


def test_trickling_uploads_cost_kilobytes_and_leave_nothing(lab: Lab, upload_dir: Path) -> None:
    before = workers_rss_mib()
    peak = 0.0
    slowest_healthz = 0.0
    clients: list[ssl.SSLSocket] = []
    try:
        for n in range(TRICKLERS):
            sock = tls_socket(lab, timeout=10, source=f"127.0.0.{2 + n % SOURCES}")
            clients.append(sock)
            sock.sendall(
                f"PUT /upload/trickle-{n}.bin HTTP/1.1\r\nHost: {lab.host}\r\n"
                f"Content-Length: {DECLARED}\r\n\r\n".encode()
            )
        for _ in range(TRICKLE_S):
            tick = time.monotonic()
            for sock in clients:
                sock.sendall(b"x")
            slowest_healthz = max(slowest_healthz, healthz_seconds(lab))
            peak = max(peak, growth_mib(before, workers_rss_mib()))
            time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
        answered = [sock for sock in clients if _answered(sock)]
    finally:
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.close()
    report.note(
        "trickling uploads",
        f"{TRICKLERS} for {TRICKLE_S}s: workers grew {peak:.1f} MiB at the peak "
        f"({peak * 1024 / TRICKLERS:.0f} KiB each), slowest /healthz {slowest_healthz:.2f}s",
    )
    assert not answered, f"{len(answered)} trickling uploads were answered early (refused by a limit?)"
    assert peak < GROWTH_LIMIT_MIB, (
        f"{TRICKLERS} trickling uploads grew the workers by {peak:.1f} MiB (limit {GROWTH_LIMIT_MIB}): "
        "an upload holds buffers while it waits for bytes (labapp.body, labapp.storage)"
    )
    stackctl.wait_for(
        lambda: not stackctl.partial_files(upload_dir), 15, "the aborted uploads' temp files to go"
    )
    assert not list(upload_dir.glob("trickle-*")), "an aborted trickling upload was stored"


def _answered(sock: ssl.SSLSocket) -> bool:
    """Whether the server has said anything on ``sock`` yet (it should not: the body is not done)."""
    sock.settimeout(0.001)
    try:
        return bool(sock.recv(1))
    except (TimeoutError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(10)


UNREAD_CLIENTS = 10
UNREAD_MESSAGE = 16 * MIB  # LAB_WS_MAX_MESSAGE's default: the largest the echo takes
SEND_TIMEOUT_S = labsettings.WS_SEND_TIMEOUT_S.value()
# Stock gevent-websocket unmasked 16 MiB in a per-byte loop (3.4 s here) holding the worker's loop;
# with LAB_FIX_WS_READ=0 it still does: the clients send one after the other, and the server may
# enforce a deadline this late.
UNMASKING_S = 30
LATE_S = 3
UNREAD_BACK_MIB = 32  # what the workers may keep (allocator caches) once the clients are closed


def test_websocket_clients_that_never_read_are_closed_with_a_reason(lab: Lab) -> None:
    """Straight to gunicorn: through nginx the kernel's buffers on both hops (tcp_rmem grows to
    32 MiB here) may take a whole 16 MiB echo, and then no worker holds anything to time out."""
    assert lab.direct_url, "this test needs the native stack's gunicorn port"
    url = lab.direct_url.replace("http://", "ws://") + "/ws/echo"
    before = workers_rss_mib()
    payload = os.urandom(UNREAD_MESSAGE)
    # A small receive window, as a client on a slow link has.
    window = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024),)
    clients = [
        websocket.create_connection(url, timeout=UNMASKING_S, sockopt=window) for _ in range(UNREAD_CLIENTS)
    ]

    turns = [threading.Event() for _ in range(UNREAD_CLIENTS + 1)]
    turns[0].set()

    def never_read(n: int) -> tuple[int | None, str, int, float]:
        conn = clients[n]
        try:
            turns[n].wait(UNMASKING_S)  # one message unmasked at a time (see UNMASKING_S)
            conn.send_binary(payload)
            # The server's deadline starts with the echo, after it has unmasked the message:
            # when bytes arrive here.
            echoing = stackctl.wait_for(
                lambda: _waiting(conn.sock) and time.monotonic(), UNMASKING_S, "the echo to start"
            )
        finally:
            turns[n + 1].set()
        # Not reading, past the deadline and the next message's unmasking (which holds the
        # worker's loop, timers too): the server's close frame then waits SEND_TIMEOUT_S more.
        time.sleep(SEND_TIMEOUT_S + LATE_S)
        return (*_read_to_close(conn), time.monotonic() - echoing)

    try:
        with ThreadPoolExecutor(UNREAD_CLIENTS) as pool:
            futures = [pool.submit(never_read, n) for n in range(UNREAD_CLIENTS)]
            held = 0.0
            while not all(future.done() for future in futures):
                held = max(held, growth_mib(before, workers_rss_mib()))
                time.sleep(0.25)
            outcomes = [future.result() for future in futures]
    finally:
        for conn in clients:
            conn.shutdown()
    back = stackctl.wait_for(
        lambda: (g := growth_mib(before, workers_rss_mib())) < UNREAD_BACK_MIB and max(g, 0.001),
        10,
        f"the workers' memory to come back within {UNREAD_BACK_MIB} MiB of before",
    )
    report.note(
        "websockets that never read",
        f"{UNREAD_CLIENTS} x a {UNREAD_MESSAGE // MIB} MiB echo: workers held {held:.0f} MiB at the "
        f"peak ({held / UNREAD_CLIENTS:.1f} MiB each), {back:.1f} MiB once closed; echo taken before "
        f"the close: {min(o[2] for o in outcomes) // MIB}-{max(o[2] for o in outcomes) // MIB} MiB",
    )
    for code, reason, echoed, seconds in outcomes:
        assert code == 1008 and "did not read" in reason, (
            f"a client that did not read its echo got close {code} {reason!r} (expected 1008 and why): "
            "labapp/patches/wssend.py, LAB_WS_SEND_TIMEOUT_S"
        )
        assert echoed < UNREAD_MESSAGE, "the whole echo was taken: this client did not hold it up"
        assert seconds < 2 * SEND_TIMEOUT_S + LATE_S, f"closed {seconds:.1f}s after the echo started"


def _waiting(sock: socket.socket) -> int:
    """Bytes in ``sock``'s receive queue (FIONREAD), without reading them."""
    count = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
    return count[0]


def _read_to_close(conn: websocket.WebSocket) -> tuple[int | None, str, int]:
    """Every frame until the close: its code and reason, and how much of the echo came before."""
    echoed = 0
    while True:
        try:
            frame = conn.recv_frame()
        except (websocket.WebSocketException, OSError):
            return None, "the connection ended without a close frame", echoed
        if frame.opcode == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            return code, data[2:].decode(errors="replace"), echoed
        echoed += len(frame.data)


BODY_DEADLINE_S = 4.0  # LAB_UPLOAD_BODY_S for this test (default 600: too long to wait for here)


_PART = (
    '--lab-slow\r\nContent-Disposition: form-data; name="file"; filename="slow-body.bin"\r\n'
    "Content-Type: application/octet-stream\r\n\r\n"
)
SLOW_BODIES = {
    "raw": "PUT /upload/slow-body.bin HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n",
    # Werkzeug's multipart parser reads this one, within the same deadline.
    "multipart": (
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=lab-slow\r\n"
        f"Content-Length: {len(_PART) + 100}\r\n\r\n{_PART}"
    ),
}


@pytest.mark.parametrize("head", SLOW_BODIES.values(), ids=SLOW_BODIES.keys())
def test_a_slow_body_is_cut_at_its_whole_body_deadline_with_408_json(
    lab: Lab, upload_dir: Path, head: str
) -> None:
    """A byte a second never trips nginx's client_body_timeout (10 s between two reads); the
    app's whole-body deadline (labapp.body) does."""
    stackctl.stop_gunicorn()
    try:
        with environment(LAB_UPLOAD_BODY_S=str(BODY_DEADLINE_S)):
            stackctl.start_gunicorn()
        with tls_socket(lab, timeout=BODY_DEADLINE_S * 4) as sock:
            sock.sendall(head.replace("{host}", lab.host).encode())
            started = time.monotonic()
            sock.settimeout(1.0)
            received = b""
            while time.monotonic() - started < BODY_DEADLINE_S * 4:
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"x")
                    continue
                if not chunk:
                    break
                received += chunk
                if b"\r\n\r\n" in received and received.rstrip().endswith(b"}"):
                    break
            seconds = time.monotonic() - started
        answer = parse_response(received)
        report.note(
            "slow body",
            f"cut after {seconds:.1f}s with {answer.status} (LAB_UPLOAD_BODY_S={BODY_DEADLINE_S:g})",
        )
        assert answer.status == 408 and answer.is_json, f"expected a 408 JSON answer, got {answer.describe()}"
        assert "LAB_UPLOAD_BODY_S" in answer.json()["msg"] and answer.json()["request_id"]
        assert BODY_DEADLINE_S - 0.5 <= seconds <= BODY_DEADLINE_S + 3, (
            f"cut after {seconds:.1f}s, expected about {BODY_DEADLINE_S:g}s (LAB_UPLOAD_BODY_S, labapp.body)"
        )
        stackctl.wait_for(
            lambda: not stackctl.partial_files(upload_dir), 5, "the slow upload's temp file to go"
        )
        assert not (upload_dir / "slow-body.bin").exists(), "a slow upload cut at its deadline was stored"
    finally:
        stackctl.stop_gunicorn()
        stackctl.start_gunicorn()


def test_uploads_over_the_per_address_limit_get_429_json(lab: Lab) -> None:
    limit = labsettings.LIMIT_CONN_UPLOAD.value()
    head = f"PUT /upload/held.bin HTTP/1.1\r\nHost: {lab.host}\r\nContent-Length: 10\r\n\r\n".encode()
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(limit):  # each in flight: headers sent, body not
            held.append(tls_socket(lab, source="127.0.0.200"))
            held[-1].sendall(head)
        time.sleep(0.5)  # nginx has read every head (the count is taken there)
        refused = exchange(
            lab, head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"), source="127.0.0.200"
        )
        other = tls_socket(lab, source="127.0.0.201")
        held.append(other)
        other.sendall(head + b"0123456789")
        other_answer = parse_response(read_until_close(other, 4096))
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
    report.note("per-address upload limit", f"{limit} held, the next from that address: {refused.status}")
    assert refused.status == 429 and refused.is_json, (
        f"upload {limit + 1} from one address: {refused.describe()}"
    )
    assert refused.json()["code"] == 429 and "limit_conn" in refused.json()["msg"]
    assert other_answer.status == 201, f"another address was refused too: {other_answer.describe()}"


BURST_CLIENTS = 200
BURST_MESSAGE = 1 * MIB
# What holds: /healthz answers within 5 s. Measured with labapp/patches/wsread.py's reader (issue 26)
# at a load average of 7 (2 cores shared by other work): 0.68-2.28 s over five runs, the
# burst echoed in 1.9-3.6 s. Before, gevent-websocket unmasked in a per-byte Python loop holding the
# worker's loop: 6.9 s, and gunicorn's heartbeat killed both workers. The 1 s does not hold
# reliably on this loaded machine.
HEALTHZ_BOUND_S = 5.0
# All 200 echoes (1.9-3.6 s here; 20-45 s with the per-byte unmasking).
BURST_DEADLINE_S = 120.0


def test_a_burst_of_large_messages_is_echoed_intact_and_healthz_answers(lab: Lab) -> None:
    payloads = [os.urandom(BURST_MESSAGE) for _ in range(4)]  # distinct, without 200 MiB of urandom
    start = threading.Barrier(BURST_CLIENTS + 1)
    done = threading.Event()

    def client(n: int) -> bool:
        payload = payloads[n % len(payloads)]
        conn = lab.ws("/ws/echo", timeout=BURST_DEADLINE_S)
        try:
            start.wait(60)
            conn.send_binary(payload)
            return conn.recv() == payload
        finally:
            conn.close()

    def healthz_worst() -> float:
        worst = 0.0
        while not done.is_set():
            started = time.monotonic()
            response = requests.get(lab.url + "/healthz", verify=str(lab.ca), timeout=HEALTHZ_BOUND_S)
            assert response.status_code == 200, f"/healthz answered {response.status_code} during the burst"
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.1)
        return worst

    with ThreadPoolExecutor(BURST_CLIENTS + 1) as pool:
        echoes = [pool.submit(client, n) for n in range(BURST_CLIENTS)]
        start.wait(60)
        began = time.monotonic()
        probe = pool.submit(healthz_worst)
        try:
            intact = sum(future.result() for future in echoes)
        finally:
            done.set()
        took = time.monotonic() - began
        worst = probe.result()
    report.note(
        "websocket burst",
        f"{BURST_CLIENTS} x {BURST_MESSAGE // MIB} MiB at once: {intact} echoed intact in {took:.1f}s; "
        f"slowest /healthz {worst:.2f}s (bound {HEALTHZ_BOUND_S:g}s)",
    )
    assert intact == BURST_CLIENTS, f"{BURST_CLIENTS - intact} of {BURST_CLIENTS} echoes came back altered"
    assert worst < HEALTHZ_BOUND_S
