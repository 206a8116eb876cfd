#!/usr/bin/env bash
# One lent GPU session for issue #17 (docs/benchmarks.md, "On a lent GPU"): the attention-mask
# classifier's three arms on the standard split and on 5 folds, and the Lite0 lesion network
# (Attention-DeepLab and plain DeepLabV3+, same encoder and recipe), in one call of a few minutes.
#
# The machine gets the repository and small packed folders only (bench/device_caches.py):
#   .gpu/a  Python wheels the image lacks (site312.tar.xz), ImageNet Lite0 (fp16, timm names),
#           IDRiD grade CSVs and the structure maps        -> stage setup-a (also a CUDA smoke run)
#   .gpu/b  the 224-px grade photos (lossless)             -> stage setup-b
#   .gpu/c  IDRiD-segmentation as published                -> stage run (trains and measures)
# Stages run in consecutive calls while the machine stays warm; files persist under $STASH.
#   .gpu/d  the wheels again and DRIVE (lossless)           -> stage vessels, alone on a fresh machine:
#           Attention U-Net++ (ResNet-34) against U-Net from one start (bench_segmentation --compare)
#
#   bash bench/gpu_session.sh setup-a|setup-b|run|vessels     (writes what comes back under $OUT)
set -u
STAGE=${1:?stage: setup-a, setup-b or run}
OUT=${OUT:-/tmp/octant-gpu-out}
STASH=${STASH:-/root/octant-gpu}
DATA=$STASH/data
LITE0=$STASH/imagenet_lite0_fp16.safetensors
# Overridable for a rehearsal on a CPU: DEVICE=cpu EPOCHS=1 LESION_STEPS=2 MINUTES=0.1 FOLDS=2 STASH=/tmp/x
# PY=.venv/bin/python SITE_PACKAGES= (the setup-a stage unpacks Python 3.12 wheels: skip it there)
MINUTES=${MINUTES:-4.5}
DEVICE=${DEVICE:-cuda}
EPOCHS=${EPOCHS:-30}
LESION_STEPS=${LESION_STEPS:-100}
FOLDS=${FOLDS:-5}
mkdir -p "$OUT" "$STASH/logs" "$DATA"
export OCTANT_CACHE_DIR=$STASH/cache OCTANT_DATA_DIR=$STASH/home PYTHONPATH=${SITE_PACKAGES-$STASH/site312} PYTHONUNBUFFERED=1 \
       OMP_NUM_THREADS=1 MPLBACKEND=Agg
PY=${PY:-python3}

case "$STAGE" in
setup-a)
    tar -C "$STASH" -xJf .gpu/a/site312.tar.xz
    $PY -c "import lzma,sys; open(sys.argv[2],'wb').write(lzma.open(sys.argv[1]).read())" \
        .gpu/a/imagenet_lite0_fp16.safetensors.xz "$LITE0"
    $PY bench/device_caches.py unpack --part grades --src .gpu/a --data "$DATA"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
    $PY -c "import torch, timm, segmentation_models_pytorch as smp, sqlalchemy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'timm', timm.__version__, 'smp', smp.__version__)" | tee -a "$OUT/gpu.txt"
    ;;
setup-b)
    $PY bench/device_caches.py unpack --part grade-photos --src .gpu/b --data "$DATA"
    ls "$OCTANT_CACHE_DIR/photo-cache/224" | wc -l | tee "$OUT/photos.txt"
    # The CUDA path end to end on a few batches, masks and all, before the real run.
    $PY main.py train --network attention-mask --reference idrid --data "$DATA" --encoder-weights "$LITE0" \
        --backbone tf_efficientnet_lite0 --fold 1/5 --epochs 1 --max-batches 3 --device $DEVICE \
        --run-dir "$STASH/smoke" --export "$STASH/smoke/m.safetensors" --no-resume 2>&1 | tail -4 | tee -a "$OUT/photos.txt"
    ;;
run)
    start=$(date +%s)
    cp -r .gpu/c/IDRiD-segmentation "$DATA/"
    # Attention-mask classifier: 3 arms × (standard split + 5 folds), one process each, side by side.
    dr=(--device $DEVICE --encoder-weights "$LITE0" --backbone tf_efficientnet_lite0 --epochs $EPOCHS --patience 5
        --minutes "$MINUTES" --run-root "$STASH/runs/dr" --data "$DATA")
    for arm in baseline attention-binary attention; do
        $PY bench/bench_attention_mask.py "${dr[@]}" --only $arm > "$STASH/logs/dr-$arm.log" 2>&1 &
        for fold in $(seq 1 "$FOLDS"); do
            $PY bench/bench_attention_mask.py "${dr[@]}" --only $arm --folds "$FOLDS" --fold $fold \
                > "$STASH/logs/dr-$arm-fold$fold.log" 2>&1 &
        done
    done
    # Lesions: the cache once, then the two architectures from one ImageNet start, equal recipe.
    $PY -c "from models.segmentation.registry import ensure_caches; ensure_caches('lesions', '$DATA')" \
        > "$STASH/logs/lesion-cache.log" 2>&1
    for arch in attention_deeplab deeplab; do
        $PY main.py train-seg --task lesions --architecture $arch --encoder tu-tf_efficientnet_lite0 \
            --encoder-weights "$LITE0" --preprocess local_contrast --decoder-channels 128 --lr 1e-3 \
            --batch-size 16 --steps-per-epoch $LESION_STEPS --epochs 200 --workers 3 --time-limit "$MINUTES" --device $DEVICE \
            --run-dir "$STASH/runs/lesions-$arch" --export "$STASH/lesions-$arch.safetensors" --data "$DATA" \
            > "$STASH/logs/lesions-$arch.log" 2>&1 &
    done
    wait
    echo "training done after $(( $(date +%s) - start )) s"
    # Pooled 5-fold comparison (212 photos) and the standard split, each network on photos it never trained on.
    $PY bench/bench_attention_mask.py "${dr[@]}" --folds "$FOLDS" --compare > "$STASH/logs/dr-compare-folds.log" 2>&1
    $PY bench/bench_attention_mask.py "${dr[@]}" --compare > "$STASH/logs/dr-compare.log" 2>&1
    cat "$STASH"/logs/dr-compare*.log
    echo "all done after $(( $(date +%s) - start )) s"
    for arm in baseline attention-binary attention; do
        cp "$STASH/runs/dr/$arm/model.safetensors" "$OUT/dr-$arm.safetensors" 2>/dev/null
    done
    cp "$STASH"/lesions-*.safetensors "$OUT/" 2>/dev/null
    tar -czf "$OUT/records.tar.gz" -C "$STASH" logs $(cd "$STASH" && ls -d runs/*/*/history.json runs/*/history.json \
        runs/*/*/*.md lesions-*.md 2>/dev/null) -C "$PWD" bench/results
    ;;
vessels)
    tar -C "$STASH" -xJf .gpu/d/site312.tar.xz
    $PY bench/device_caches.py unpack --part drive --src .gpu/d --data "$DATA"
    for arm in attention_unetpp unet; do   # logs straight into $OUT: they come back even if the call is cut
        $PY bench/bench_segmentation.py --compare vessels --arm $arm --epochs 1000 --minutes "$MINUTES" --workers 2 \
            --run-root "$STASH/runs/vessels" --data "$DATA" > "$OUT/vessels-$arm.log" 2>&1 &
        sleep 5   # either arm may write the shared start (atomically, the same file); let the first begin
    done
    wait
    cp bench/results/bench_segmentation_compare.json "$OUT/" 2>/dev/null
    tail -n 25 "$OUT"/vessels-*.log
    ;;
*)
    echo "unknown stage $STAGE" >&2; exit 2 ;;
esac
