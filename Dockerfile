FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files as production serves them: hashed and compressed, with their manifest (DEBUG off).
# The key only lets the settings load for this one step; it is not in the image's environment.
RUN DEBUG=0 STATIC_MANIFEST=1 SECRET_KEY=build-time-only-collectstatic-key-it-signs-nothing-at-all \
    python manage.py collectstatic --no-input
RUN useradd --create-home app && chown -R app /app
USER app
EXPOSE 8000
