"""nginx's common refusals and warnings, each with the way out: `lab check` prints the fix beside
nginx's own message (which already names the user's file and line). The patterns are nginx's
message texts (src/core/ngx_conf_file.c, src/http/ngx_http_core_module.c, ...), never reworded.
"""

from __future__ import annotations

import re

# (nginx's message, as a regex on one line of `nginx -t`) -> the fix, in nginx terms.
FIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), fix)
    for pattern, fix in (
        (
            r'no "events" section in configuration',
            "a whole nginx.conf needs an `events {}` block at the top level, beside `http {}`",
        ),
        (
            r'the "ssl" directive is deprecated|unknown directive "ssl"',
            "remove `ssl on;` and say it on the listen: `listen 443 ssl;` (nginx 1.25.1 refuses `ssl on`)",
        ),
        (
            r'the "listen \.\.\. http2" directive is deprecated',
            "write `http2 on;` in the server and drop `http2` from the listen (nginx 1.25.1+)",
        ),
        (
            r'unknown directive "http2"',
            "this nginx predates `http2 on;` (1.25.1): write `listen 443 ssl http2;` instead",
        ),
        (
            r'unknown directive "(more_set_headers|more_clear_headers|more_set_input_headers)"',
            "from the headers-more module, not built into this nginx: install it (Debian: "
            "libnginx-mod-http-headers-more-filter) and `load_module`, or use `add_header`/"
            "`proxy_set_header`",
        ),
        (
            r'unknown directive "(brotli\w*)"',
            "from the ngx_brotli module, not built into this nginx: load it, or remove the brotli lines",
        ),
        (
            r'unknown directive "',
            "a directive of a module this nginx was not built with (`nginx -V` lists its modules), or a "
            "misspelling: load the module (`load_module modules/...so;`) or remove the line",
        ),
        (
            r"duplicate listen options for",
            "options of a listen socket (ssl, http2, default_server, backlog, reuseport, ipv6only) may be "
            "given once per address:port: keep them on one server's listen, the others plain "
            "`listen 443 ssl;`",
        ),
        (
            r"a duplicate default server for",
            "only one server per address:port may say `default_server`: remove it from all but one",
        ),
        (
            r'unknown "(\w+)" variable',
            "the variable is defined nowhere: for `$connection_upgrade` add at http level "
            "`map $http_upgrade $connection_upgrade { default upgrade; '' close; }`",
        ),
        (
            r'"proxy_pass" cannot have URI part in location given by regular expression',
            "drop the URI from proxy_pass in a regex location (`proxy_pass http://app;`), or use a prefix "
            "location",
        ),
        (
            r"could not build server_names_hash, you should increase server_names_hash_bucket_size",
            "add `server_names_hash_bucket_size 64;` at http level (a long server_name)",
        ),
        (
            r'"(\w+)" directive is not allowed here',
            "the directive sits in the wrong block (a server-level one in http, a location-level one in "
            "server...): move it where nginx's documentation says its Context is",
        ),
    )
)


def fix_for(message: str) -> str | None:
    """The way out of one nginx message, when it is a common one."""
    return next((fix for pattern, fix in FIXES if pattern.search(message)), None)


def with_fixes(message: str) -> str:
    """nginx's message, each line it has a fix for followed by that fix."""
    out = []
    for line in message.splitlines():
        out.append(line)
        if (fix := fix_for(line)) is not None:
            out.append(f"  fix: {fix}")
    return "\n".join(out)
