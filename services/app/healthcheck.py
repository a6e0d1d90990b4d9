"""Container healthcheck: GET /healthz on gunicorn's own port, exit 0 only on 200 "status": "ok".

Standard library only and no TLS, so it is cheap enough to run every few seconds. The body's other
fields (the chat broker's state) are not health: with Redis down the app still serves everything
else, and an unhealthy app would be taken out of rotation.
"""

import http.client
import json
import sys

import labsettings


def main() -> int:
    port = int(labsettings.GUNICORN_BIND.value()[0].rpartition(":")[2])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz", headers={"Host": "localhost", "X-Request-ID": "healthcheck"})
        response = connection.getresponse()
        body = response.read()
    except OSError as error:
        print(f"healthcheck: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if response.status == 200 and isinstance(answer, dict) and answer.get("status") == "ok":
        return 0
    print(f"healthcheck: HTTP {response.status}: {body[:200]!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
