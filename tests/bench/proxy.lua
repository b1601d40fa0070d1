-- proxy.lua - wrk script for tests/bench/bench.py.
--
--   wrk ... -s proxy.lua http://127.0.0.1:PROXYPORT/ -- TARGET HOST
--
-- wrk connects to the address in its URL; every request it sends is
--   GET TARGET HTTP/1.1
--   Host: HOST
-- so TARGET = "http://127.0.0.1:ORIGIN/small.bin" makes absolute-form
-- requests through a forward proxy (keep-alive, HTTP/1.1), and
-- TARGET = "/small.bin" makes origin-form requests to a server or a
-- reverse proxy. done() prints one machine-readable line, BENCHJSON {...},
-- that bench.py parses (latencies in microseconds).

function init(args)
   if args[1] then wrk.path = args[1] end
   if args[2] then wrk.headers["Host"] = args[2] end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"bytes":%d,"duration_us":%d,' ..
      '"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
      '"errors_status":%d,"errors_timeout":%d,' ..
      '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
      summary.requests, summary.bytes, summary.duration,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
