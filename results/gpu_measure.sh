#!/usr/bin/env bash
# How the book's GPU figures were measured: one call of the device tool (an H100, Keras 3 on JAX;
# that machine has no TensorFlow). Carried: .whl (keras, namex and optree wheels) and .gpu
# (chapter 9's token ids, cut to the encoder's length and stored as uint16; Tiny Shakespeare in
# .gpu/data/shakespeare/input.txt, the mirror layout). Usage there: bash results/gpu_measure.sh OUTDIR
set -u
out=${1:?output folder}
budget=${BUDGET_S:-530}   # seconds for the whole script; each step gets what is left
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src KERAS_BACKEND=jax DLBOOK_DATA_MIRROR=$PWD/.gpu/data PYTHONUNBUFFERED=1
left() { echo $(( budget - SECONDS - ${1:-0} )); }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import keras, jax, numpy; print('keras', keras.__version__, '| jax', jax.__version__, '| numpy', numpy.__version__, '|', jax.devices())"
} 2>&1 | tee "$out/device.txt"
# The figures of 2026-11-26 (results/runs/) were single label draws; bench text now draws --subsets 3
# paired subsets per label count below all and tries the learning-rate grid (FineTuner.select),
# several times the fine-tuning time of then: give steps 1 and 2 more of the budget when rerunning.
# 1. Chapter 9, gpu profile: masked-LM pretraining, then fine-tuning at 100, 1,000 and 22,500 labels.
timeout "$(left 150)" python3 -m dlbook.bench text --profile gpu --ids .gpu/imdb-gpu.npz --verbose \
    --json "$out/text.jsonl" 2>&1 | tee "$out/text_gpu.log"
# 2. Chapter 9's cpu recipe with 1x, 4x and 16x the pretraining (how the gain grows with pretraining).
for s in 32000 128000 512000; do
  [ "$(left 100)" -gt 20 ] || break
  timeout "$(left 100)" python3 -m dlbook.bench text --profile cpu --ids .gpu/imdb-cpu.npz --sequences $s \
      --labels 100,1000,8000 --json "$out/text.jsonl"
done 2>&1 | tee "$out/text_cpu_sweep.log"
# 3. Chapter 8, gpu profile (nanoGPT's shakespeare-char recipe), with what time is left.
[ "$(left)" -gt 60 ] && timeout "$(left)" python3 -m dlbook.bench gpt --profile gpu --verbose 2>&1 | tee "$out/gpt_gpu.log"
echo "script done after $SECONDS s"
