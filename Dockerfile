# The farm's own service image (API and workers) for docker-compose.yml.
# Model images are not built from this file: workers/build/Dockerfile.template is.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api/ api/
COPY core/ core/
COPY workers/ workers/
COPY runner/ runner/
COPY migrations/ migrations/
COPY alembic.ini ./
RUN pip install --no-cache-dir .
USER 10000:10000
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
