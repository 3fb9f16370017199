FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MODEL_CACHE_DIR=/app/var/models
# Point TORCH_INDEX_URL at PyTorch's CPU wheel index to keep CUDA out of the image.
ARG TORCH_INDEX_URL=
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    else pip install --no-cache-dir torch==2.13.0; fi
COPY pyproject.toml README.md ./
COPY api api
COPY outbox outbox
COPY workers workers
COPY clustering clustering
COPY connectors connectors
COPY imports imports
COPY outbound outbound
COPY schemas schemas
COPY db db
COPY embedded embedded
RUN pip install --no-cache-dir .
# Build the int8 ONNX model at image build time, so no container does it at start.
RUN python -c "from clustering.embed import build_embedder; from pathlib import Path; build_embedder('onnx-int8', Path('/app/var/models'))"
EXPOSE 8000
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000"]
