# llm-gateway: `docker build -t llm-gateway .` then
#   docker run -p 8000:8000 -e LLM_GATEWAY_MASTER_KEY=... -v $PWD/gateway.yaml:/etc/llm-gateway/gateway.yaml llm-gateway
# Dependencies come only from the hash-locked requirements/runtime.txt (requirements/README.md).
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/llm-gateway
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/llm-gateway/bin/pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/llm-gateway/bin/pip install --no-cache-dir --no-deps --no-build-isolation .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/llm-gateway --create-home gateway
COPY --from=build /opt/llm-gateway /opt/llm-gateway
ENV PATH=/opt/llm-gateway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER gateway:gateway
# The embedded default's SQLite file (database_url: sqlite:///./llm-gateway.db) lands here.
WORKDIR /var/lib/llm-gateway
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
ENTRYPOINT ["llm-gateway", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
