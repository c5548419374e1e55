FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mailservice mailservice
RUN pip install --no-cache-dir .
ENV MAILSERVICE_ENVIRONMENT=production MAILSERVICE_DATA_DIR=/data
VOLUME /data
