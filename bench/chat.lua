-- wrk script: every request is the same small non-streaming chat completion.
-- The Authorization header is ignored by the mock and accepted by the proxies
-- as configured for the benchmark.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_API_KEY") or "sk-bench")
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16}'
