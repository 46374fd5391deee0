# One image for the worker, the recorder, the command line, the API and the console.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# CPU wheels of the pinned torch keep the image small; on a GPU host use the default index.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url ${TORCH_INDEX} torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY footage footage
COPY indexer indexer
COPY search search
COPY workers workers
COPY ui ui
COPY migrations migrations
RUN pip install --no-cache-dir .
# GPU=1 (docker-compose.yml's worker-gpu, with a CUDA TORCH_INDEX): the ONNX detector on
# CUDA (onnxruntime-gpu offers CUDAExecutionProvider first). Untested here: no GPU.
ARG GPU=0
RUN if [ "$GPU" = "1" ]; then \
      pip uninstall -y onnxruntime && pip install --no-cache-dir onnxruntime-gpu==1.31.1; \
    fi
ENV FOOTAGE_DATA_DIR=/data YOLO_CONFIG_DIR=/data/ultralytics
VOLUME ["/data"]
ENTRYPOINT ["footage"]
CMD ["--help"]
