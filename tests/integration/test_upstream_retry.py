"""nginx retries a request on another upstream server only when the connection failed (a killed
worker), never after a timeout: a timed-out request must reach the app once, not three times."""

from __future__ import annotations

from support.lab import access_log_entry, assert_json_error


def test_a_timed_out_request_is_not_sent_again(lab, http, edited_nginx):
    (edited_nginx.copy / "snippets/proxy-timeouts.conf").write_text("proxy_read_timeout 1s;\n")
    edited_nginx.reload_and_wait()
    response = http.get(lab.url + "/slow", params={"seconds": 2, "token": "once"})
    assert_json_error(response, 504)
    request_id = response.headers["X-Request-ID"]
    attempts = access_log_entry(request_id)["upstream_status"]
    assert attempts == "504", (
        f"upstream attempts {attempts!r}: a timeout was retried on the backup "
        "servers; proxy_next_upstream must be `error` only (nginx.conf)"
    )
