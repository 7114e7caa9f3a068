# One image for every service in docker-compose.yml: the five functions, the local gateways,
# the schedule and queue triggers, and the one-shot migration.
FROM python:3.11-slim

# PYTHONPATH: functions/ and infra/ run from the checkout in /app. `pip install .` installs the
# dependencies, shopcore and the `shop` command (infra.ops.cli); infra/ is copied after it, so
# `shop` imports infra from /app, with functions/ and the migrations beside it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

COPY pyproject.toml ./
COPY shopcore/ shopcore/
RUN pip install . && rm -rf build ./*.egg-info

COPY infra/ infra/
COPY functions/ functions/

RUN useradd --create-home --uid 10001 app
USER app

EXPOSE 8080

# docker-compose.yml gives every service its own command; alone, the image runs the whole
# local emulation (it needs DATABASE_URL, READ_DATABASE_URL and BROKER_URL).
CMD ["shop", "run"]
