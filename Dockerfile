# Factorial worker image: `docker build -t factorial-worker .`
# Runs `factorial worker MODULE:ATTR`; override the command to serve your own app, e.g.
#   docker run factorial-worker worker myapp.workers:orchestrator
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install the project from a scratch copy of its sources, then drop the copy: the worker
# imports the installed package, and /app (the working directory, importable by
# `factorial worker`) is left for your own modules. The dependencies come at the versions
# pinned in constraints.txt; no extras, so no `temporal` dev-server binary (the `local` extra).
COPY pyproject.toml README.md constraints.txt /tmp/src/
COPY factorial /tmp/src/factorial
COPY workflows /tmp/src/workflows
COPY activities /tmp/src/activities
RUN pip install -c /tmp/src/constraints.txt /tmp/src && rm -rf /tmp/src

RUN useradd --create-home --uid 10001 --user-group factorial \
    && mkdir /app && chown factorial:factorial /app
USER factorial
WORKDIR /app

# `factorial worker` serves its health check here (200 while its workers run, else 503);
# HEALTHCHECK probes it with `python -m factorial._health`.
ENV FACTORIAL_HEALTH_PORT=8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "factorial._health"]

# `factorial worker` stops gracefully on SIGTERM (running turns get to finish briefly).
ENTRYPOINT ["factorial"]
CMD ["worker", "factorial.example_app:orchestrator"]
