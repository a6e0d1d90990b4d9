"""The large-message reference: the `websockets` library's echo server (asyncio, its C speedups),
no compression, no message cap. The bench runs it beside the app, one worker each, and sends
both the same message with the same client: ``ws.large_echo_vs_reference_ratio``.

Run by the bench as a script: ``reference_echo.py PORT``.
"""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, serve


async def echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def main(port: int) -> None:
    async with serve(echo, "127.0.0.1", port, compression=None, max_size=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
