-- wrk script: every request is the same streamed chat completion, usage asked for.
-- wrk reads each chunked answer to its end, so a request is one whole stream.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_API_KEY") or "sk-bench")
wrk.body = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello"}],"stream":true,"stream_options":{"include_usage":true}}'
