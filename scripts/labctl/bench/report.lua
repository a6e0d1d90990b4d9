-- wrk calls done() once at the end: print the totals as one JSON line, so the bench reads
-- numbers rather than wrk's human-formatted text (units vary: us, ms, s).
done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"wrk":1,"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
