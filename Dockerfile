# One image for every service; the command picks the service: `python -m services.<name>`.
FROM python:3.11.11-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Runtime lock only: test tools, linters and benchmark libraries live in requirements-dev.lock.
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY libs libs
COPY services services
COPY retain_cli retain_cli
RUN pip install --no-cache-dir --no-deps .
RUN groupadd --system --gid 10001 retain && useradd --system --uid 10001 --gid 10001 --no-create-home retain
# Numeric, so Kubernetes can verify runAsNonRoot; the root filesystem can be mounted read-only (only /tmp is written).
USER 10001:10001
ENV RETAIN_HTTP_HOST=0.0.0.0 RETAIN_HTTP_PORT=8000
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
