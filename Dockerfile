# syntax=docker/dockerfile:1
# The dashboard only: point it at a LiveKit server with LIVEKIT_URL, LIVEKIT_API_KEY and
# LIVEKIT_API_SECRET at run time (no livekit-server inside the image), e.g.
#   docker build -t livekit-dashboard .
#   docker run -p 8501:8501 -e LIVEKIT_URL=wss://... -e LIVEKIT_API_KEY=... \
#       -e LIVEKIT_API_SECRET=... -e DASHBOARD_SECRET_KEY=... -v dashboard-data:/app/data \
#       livekit-dashboard
# Browser assets (the API docs' Swagger UI) from npm, installed from the lock file; nothing
# from npm runs at install.
FROM node:20-bookworm-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

WORKDIR /app

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin app

# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The application, copied path by path so that local state never reaches the image
# (.venv, .tools, data/ with its databases and devserver.json, .streamlit/secrets.toml).
# Unmatched wildcards are fine as long as one file matches (app.py always does).
COPY *.py *.ini ./
COPY lib/ ./lib/
COPY pages/ ./pages/
COPY migrations/ ./migrations/
COPY assets/ ./assets/
COPY .streamlit/config.toml ./.streamlit/config.toml
COPY --from=frontend /frontend/node_modules/swagger-ui-dist/ ./frontend/node_modules/swagger-ui-dist/

# data/ holds the runtime databases: the only place the app writes. Mount a volume there.
RUN mkdir -p /app/data && chown app:app /app/data

USER app

EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8501/healthz', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["streamlit", "run", "app.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]
