# syntax=docker/dockerfile:1
# Jiritsu's runtime image. It keeps the checkout layout (lib/jiritsu finds config.toml and
# migrations/ two levels up) and installs runtime dependencies only, from uv.lock, with the same
# pinned uv as scripts/bootstrap.py. Built and pushed by .github/workflows/release.yml as the
# build artifact of each commit; the servers run the same commit from a checkout under systemd
# (CONTRIBUTING.md, "Deploying"), and the image runs any command elsewhere:
#
#   docker build -t jiritsu .
#   docker run --rm --init -v /var/lib/jiritsu:/var/lib/jiritsu --env-file jiritsu.env jiritsu status
FROM python:3.12-slim

# Keep equal to UV_VERSION in scripts/bootstrap.py (tests/test_ci_workflows.py checks it).
ARG UV_VERSION=0.13.9

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install --no-cache-dir --root-user-action=ignore "uv==${UV_VERSION}"

# Fixed ids, so that the data dir on a host can be chowned to them (10001:10001).
RUN groupadd --system --gid 10001 jiritsu \
    && useradd --system --uid 10001 --gid jiritsu --home-dir /var/lib/jiritsu --no-create-home \
        --shell /usr/sbin/nologin jiritsu \
    && install -d -o jiritsu -g jiritsu -m 0750 /var/lib/jiritsu

WORKDIR /app
ENV PATH="/app/.venv/bin:${PATH}" \
    JIRITSU_GENERAL__DATA_DIR=/var/lib/jiritsu

# Dependencies first: this layer is only rebuilt when the lock changes. No --extra: the `test`
# and `dev` extras stay out of the image.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project

# Then the checkout itself, owned by root and read-only for the service user. uv installs the
# project editable (its default), which is what keeps the checkout layout working; the import
# of the console script is checked here so that a broken entry point fails the build.
COPY . .
RUN uv sync --locked --no-dev \
    && .venv/bin/python -m compileall -q lib cli migrations \
    && JIRITSU_GENERAL__DATA_DIR=/tmp/build-check .venv/bin/jiritsu --help >/dev/null \
    && rm -rf /tmp/build-check

VOLUME ["/var/lib/jiritsu"]
# The user was created above with fixed ids (10001:10001).
# hadolint ignore=DL3066
USER jiritsu

# No HEALTHCHECK: `jiritsu health` is a scheduled job (jiritsu-health.timer) that records its
# results and alerts on changes; run as a container probe it would do that in every container.
HEALTHCHECK NONE

# jiritsu runs as PID 1: start containers with `docker run --init` so that SIGTERM reaches it.
ENTRYPOINT ["jiritsu"]
CMD ["status"]
