"""Another client of a websocket echo server, in a process of its own (the bench's large-message
client would otherwise hold the GIL it needs): small echoes back to back until its stdin closes,
then one line per round trip on stdout, ``<sent, CLOCK_MONOTONIC s> <round trip s>``.

Run by the bench as a script: ``ws_prober.py URL``.
"""

from __future__ import annotations

import sys
import threading
import time

from websockets.sync.client import connect

PROBE = "probe"


def main(url: str) -> None:
    stop = threading.Event()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_stdin_to_close, daemon=True).start()
    samples = []
    with connect(url, compression=None, open_timeout=10) as client:
        print("ready", flush=True)
        while not stop.is_set():
            sent = time.monotonic()
            client.send(PROBE)
            client.recv(60)
            samples.append((sent, time.monotonic() - sent))
            time.sleep(0.001)
    sys.stdout.write("".join(f"{sent} {rtt}\n" for sent, rtt in samples))


if __name__ == "__main__":
    main(sys.argv[1])
