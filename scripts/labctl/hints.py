"""The likely cause of each broken behaviour, worded once: used by test failure messages and
by `make doctor`, so both name the same nginx or app line."""

HOST_DROPS_PORT = (
    "Location lost the port: `proxy_set_header Host $host` drops it; send `$host:<public port>` "
    "(the client's raw `$http_host` keeps the port but lets a forged Host through)"
)
UPSTREAM_HOST = (
    "the app saw the upstream's name as Host: nginx sends the proxy_pass host when no "
    "`proxy_set_header Host` is set; add `proxy_set_header Host $host:<public port>`"
)
SCHEME_LOST = (
    "the app built an http:// URL behind TLS: nginx must send `X-Forwarded-Proto $scheme` and the "
    "app must trust it (ProxyFix x_proto=1, LAB_FIX_PROXY=1)"
)
LOCATION_DROPS_HEADERS = (
    "a location with its own proxy_set_header loses every inherited one: include "
    "snippets/proxy.conf in that location instead of setting headers there"
)
HTTPS_REDIRECT_DROPS_PORT = (
    "the HTTP->HTTPS redirect lost the public port: `return 301 https://$host$request_uri` "
    "lands on 443; use `https://$host:<public https port>$request_uri`"
)
WS_NO_UPGRADE = (
    "the websocket handshake was not upgraded: nginx must forward `Upgrade $http_upgrade` and "
    "`Connection $connection_upgrade` (hop-by-hop headers are dropped otherwise)"
)
WS_HTTP10 = "websockets need `proxy_http_version 1.1` (nginx talks HTTP/1.0 upstream by default)"
WS_NO_FLAG = (
    "101 then an immediate close: the Flask route lacks `websocket=True`, so gevent-websocket "
    "upgrades and then routing refuses it"
)
WS_IDLE_TIMEOUT = (
    "an idle websocket was dropped: proxy_read_timeout on the websocket location is shorter than "
    "the idle time; raise it or send pings"
)
BODY_LIMIT = "nginx refused the body with 413: client_max_body_size defaults to 1m"
EARLY_REJECT = (
    "the client got 502 where the app answered early: the worker closed with an unread body "
    "(RST); drain the body (LAB_FIX_DRAIN_BODY=1) and use proxy_http_version 1.1"
)
FORM_MEMORY = (
    "a large non-file form field got 413: Werkzeug caps form fields at 500 kB unless "
    "MAX_FORM_MEMORY_SIZE is set (LAB_FIX_FORM_MEMORY=1)"
)
UPSTREAM_TIMEOUT = "nginx gave up on a slow response with 504: proxy_read_timeout is shorter than the request"
HTML_ERRORS = (
    "an error came back as HTML: nginx needs the json-errors snippet (error_page ... /_lab/error.json), "
    "the app LAB_FIX_JSON_ERRORS=1"
)
XFF_SPOOFING = (
    "the app believed a forged X-Forwarded-For: nginx must append with "
    "`$proxy_add_x_forwarded_for` and the app trust exactly one hop (ProxyFix x_for=1)"
)
REQUEST_ID = "X-Request-ID differs between nginx and the app: nginx must send `X-Request-ID $request_id`"
UPLOAD_STREAMING = (
    "a large upload was cut or altered: check client_max_body_size, proxy_request_buffering off "
    "on /upload, and the app's streaming upload path"
)
