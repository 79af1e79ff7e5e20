-- wrk script for the proxy benchmark (tests/bench/proxy_bench.sh): POST an
-- OpenAI chat request for model "bench" (`-- auto`: model "auto", steered by
-- erg serve); `-- stream` asks for an SSE stream.
-- At the end it prints one machine-readable line:
--   ERG_BENCH requests=N seconds=S rps=R p50_us=.. p99_us=.. non2xx=N errors=N
-- (errors: connect, read, write and timeout errors; wrk counts a status
-- >= 400 as non2xx). The script does not look at bodies: proxy_bench.sh
-- checks one answer of each kind with curl before measuring.

local stream = false
local model = "bench"

function init(args)
	for _, a in ipairs(args) do
		if a == "stream" then
			stream = true
		elseif a == "auto" then	-- erg chooses model and budget
			model = "auto"
		end
	end
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello."}]'
		.. (stream and ',"stream":true' or '') .. '}'
end

function done(summary, latency, requests)
	local e = summary.errors
	local seconds = summary.duration / 1e6
	io.write(string.format(
		"ERG_BENCH requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d non2xx=%d errors=%d\n",
		summary.requests, seconds, summary.requests / seconds,
		latency:percentile(50), latency:percentile(99), e.status,
		e.connect + e.read + e.write + e.timeout))
end
