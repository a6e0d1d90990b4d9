"""nginx retries a request on another upstream server when the connection failed or could not be
made (a killed worker, a vanished replica), never after a read timeout: a timed-out request must
reach the app once, not three times."""

from __future__ import annotations

from support.lab import access_log_entry, assert_json_error


def test_a_timed_out_request_is_not_sent_again(lab, http, edited_nginx):
    (edited_nginx.copy / "snippets/proxy-timeouts.conf").write_text("proxy_read_timeout 2s;\n")
    edited_nginx.reload_and_wait()
    response = http.get(lab.url + "/slow", params={"seconds": 3, "token": "once"})
    assert_json_error(response, 504)
    request_id = response.headers["X-Request-ID"]
    attempts = access_log_entry(request_id)["upstream_status"]
    assert attempts == "504", (
        f"upstream attempts {attempts!r}: a read timeout was retried on the next server; "
        "proxy_next_upstream_timeout must stay at or below proxy_read_timeout (nginx.conf)"
    )
