# F5 Voice Studio: the Gradio app and its OpenAI-compatible API on a CUDA runtime.
#   docker build -t f5-voice-studio .
#   docker run --gpus all -p 7860:7860 -v f5-hub-cache:/data/hf -v f5-voices:/data/studio f5-voice-studio
# torch 2.14.1 is a CUDA 13 build that brings its own CUDA libraries; the base image supplies
# the runtime environment the NVIDIA container toolkit expects (driver >= 580).
FROM nvidia/cuda:13.0.1-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# ffmpeg: torchaudio/torchcodec decoding and Gradio's streaming audio.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1001 studio \
    && mkdir -p /data/hf /data/studio /app \
    && chown studio:studio /data/hf /data/studio /app

WORKDIR /app
COPY requirements.txt ./
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt

COPY --chown=studio:studio app.py ./
COPY --chown=studio:studio engine ./engine
COPY --chown=studio:studio studio ./studio
COPY --chown=studio:studio cluster ./cluster
COPY --chown=studio:studio assets ./assets

# The Hugging Face cache (F5TTS_v1_Base and Vocos, ~1.4 GB) and the voice library live on volumes
# so they survive container restarts; mount a model directory and set F5_MODEL_DIR to run fully offline.
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/data/hf \
    F5_DATA_DIR=/data/studio \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860 \
    GRADIO_ANALYTICS_ENABLED=False \
    WANDB_MODE=disabled
VOLUME ["/data/hf", "/data/studio"]

USER 1001:1001
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz', timeout=4)"]

CMD ["python", "app.py"]
