# Tollgate as a container image: `tollgate serve` as PID 1, as a non-root user.
#
#   docker build -t tollgate .
#   docker run -p 4000:4000 -v $PWD/config.yaml:/etc/tollgate/config.yaml:ro \
#     -e TOLLGATE_HOST=0.0.0.0 tollgate
#
# Build stage: the wheels of Tollgate and its dependencies, so the runtime image
# carries no compiler and no pip cache.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
COPY providers ./providers
COPY policies ./policies
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# A fixed uid, so volume permissions and Kubernetes' runAsUser agree with the image.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tollgate --create-home tollgate
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY config.yaml /etc/tollgate/config.yaml
USER 10001:10001
# The SQLite ledger and the journal live here by default (relative paths in the config).
WORKDIR /var/lib/tollgate
ENV PYTHONUNBUFFERED=1 TOLLGATE_HOST=0.0.0.0
EXPOSE 4000
# SIGTERM: stop accepting, drain requests in flight (server.drain_timeout_s), flush the ledger.
STOPSIGNAL SIGTERM
# The slim image has no curl: Python's standard library asks /readyz (503 while draining or not ready).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4000/readyz', timeout=2).status != 200)"]
ENTRYPOINT ["tollgate", "serve"]
CMD ["--config", "/etc/tollgate/config.yaml"]
