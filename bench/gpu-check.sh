#!/usr/bin/env bash
# nnscope GPU check: build the native engine with CUDA on a GPU machine (cmake, g++,
# nvcc; no Node needed), run every native test — the CUDA tests must RUN there, not
# skip — and the native benchmarks, then print a summary table.
#
#   bench/gpu-check.sh            (from anywhere; results in ${OUT:-bench/results})
#
# Writes at most 11 files there: gpu-check-summary.log, ctest.log, bench_cuda_linalg.{json,log},
# bench_linalg.{json,log}, bench_cuda_models.{json,log}, bench_cuda_hessian.{json,log}, and gpu-check-logs.tar.gz (nvidia-smi, configure, build,
# device report, no-GPU path, compute-sanitizer logs). Takes ~3-5 minutes on a
# 16-core H100 machine (most of it the build).
#
# Environment:
#   OUT                       where logs and JSON go (default: <repo>/bench/results)
#   BUILD_DIR                 build directory (default: <repo>/build-gpu-check; reused if present)
#   NNSCOPE_GPU_CHECK_ARCHS   CMAKE_CUDA_ARCHITECTURES for this build. Default: the
#                             GPU's own (nvidia-smi compute_cap, e.g. 9.0 -> "90":
#                             sm_90 code + compute_90 PTX; one target keeps the
#                             build short). "default" = the project's default list.
#   CTEST_JOBS                parallel ctest jobs (default 4)
# Exit status 0 only if every required step passed.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTDIR="${OUT:-$ROOT/bench/results}"
BUILD="${BUILD_DIR:-$ROOT/build-gpu-check}"
JOBS="$(nproc 2>/dev/null || echo 4)"
CTEST_JOBS="${CTEST_JOBS:-4}"
LOGS="$OUTDIR/gpu-check-logs"
rm -rf "$LOGS"
mkdir -p "$OUTDIR" "$LOGS"
T0=$SECONDS

declare -a STEP STATUS DETAIL
FAILED=0
record() {  # record NAME STATUS(ok|FAIL|warn|skip) DETAIL
  STEP+=("$1"); STATUS+=("$2"); DETAIL+=("$3")
  [ "$2" = "FAIL" ] && FAILED=1
  printf '>> %-22s %-5s %s\n' "$1" "$2" "$3"
}
summary() {
  echo
  echo "================ nnscope GPU check: summary ($((SECONDS - T0)) s) ================"
  printf '%-22s %-5s %s\n' "step" "state" "detail"
  for i in "${!STEP[@]}"; do printf '%-22s %-5s %s\n' "${STEP[$i]}" "${STATUS[$i]}" "${DETAIL[$i]}"; done
  if [ "$FAILED" = 0 ]; then echo "RESULT: PASS"; else echo "RESULT: FAIL"; fi
  echo "logs and JSON: $OUTDIR"
}
finish() {
  summary | tee "$OUTDIR/gpu-check-summary.log"
  tar czf "$OUTDIR/gpu-check-logs.tar.gz" -C "$OUTDIR" gpu-check-logs 2>/dev/null && rm -rf "$LOGS"
  exit "$FAILED"
}

# ---------------------------------------------------------------- tools
NVCC="$(command -v nvcc || true)"
if [ -z "$NVCC" ]; then
  for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do [ -x "$c" ] && NVCC="$c" && break; done
fi
if [ -z "$NVCC" ]; then record nvcc FAIL "nvcc not found (PATH, /usr/local/cuda*/bin)"; finish; fi
# Use the toolkit's real nvcc (a wrapper script can confuse CMake's detection).
REAL_NVCC="$(readlink -f "$NVCC")"
case "$REAL_NVCC" in */bin/nvcc) ;; *) REAL_NVCC="$NVCC";; esac
NVCC_VER="$("$REAL_NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
record nvcc ok "$REAL_NVCC ($NVCC_VER)"
command -v cmake >/dev/null || { record cmake FAIL "cmake not found"; finish; }
GEN="Unix Makefiles"; command -v ninja >/dev/null && GEN="Ninja"

# ---------------------------------------------------------------- the GPU
if command -v nvidia-smi >/dev/null; then
  nvidia-smi 2>&1 | tee "$LOGS/nvidia-smi.log"
  GPU_NAME="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
  CC="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
  record nvidia-smi ok "${GPU_NAME:-?}"
else
  CC=""
  record nvidia-smi warn "nvidia-smi not found"
fi
ARCHS="${NNSCOPE_GPU_CHECK_ARCHS:-}"
if [ -z "$ARCHS" ]; then
  if [[ "$CC" =~ ^[0-9]+$ ]]; then ARCHS="$CC"; else ARCHS="90"; fi
fi
ARCH_FLAG=("-DCMAKE_CUDA_ARCHITECTURES=$ARCHS")
[ "$ARCHS" = "default" ] && ARCH_FLAG=()

# ---------------------------------------------------------------- configure + build
t=$SECONDS
if ! CUDACXX="$REAL_NVCC" cmake -S "$ROOT" -B "$BUILD" -G "$GEN" -DCMAKE_BUILD_TYPE=Release \
     -DNNSCOPE_CUDA=on -DNNSCOPE_TESTS=ON -DCMAKE_CUDA_COMPILER="$REAL_NVCC" "${ARCH_FLAG[@]}" \
     >"$LOGS/configure.log" 2>&1; then
  tail -30 "$LOGS/configure.log"
  record configure FAIL "see gpu-check-logs/configure.log"; finish
fi
if ! cmake --build "$BUILD" --parallel "$JOBS" >"$LOGS/build.log" 2>&1; then
  grep -E "error|Error" "$LOGS/build.log" | head -30
  record build FAIL "see gpu-check-logs/build.log"; finish
fi
record build ok "$((SECONDS - t)) s, $GEN, $JOBS jobs, CUDA archs: $ARCHS"

TEST_BIN="$BUILD/native/tests/test_cuda_linalg"
if [ ! -x "$TEST_BIN" ]; then record build FAIL "test_cuda_linalg was not built (CUDA off?)"; finish; fi
if readelf -d "$TEST_BIN" | grep NEEDED | grep -Eq 'libcudart|libcuda\.'; then
  record static-cudart FAIL "test binary has a NEEDED entry on libcudart/libcuda"
else
  record static-cudart ok "no libcudart/libcuda NEEDED"
fi

# ---------------------------------------------------------------- tests
t=$SECONDS
(cd "$BUILD" && ctest --output-on-failure -j "$CTEST_JOBS" --timeout 600) >"$OUTDIR/ctest.log" 2>&1
CTEST_RC=$?
TOTAL_LINE="$(grep -E 'tests passed|tests failed' "$OUTDIR/ctest.log" | tail -1)"
SKIPPED_ALL="$(grep -cE '\*\*\*Skipped|Skipped[[:space:]]+[0-9.]+ sec' "$OUTDIR/ctest.log" || true)"
CUDA_SKIPPED="$(grep -E 'test_cuda_linalg\.' "$OUTDIR/ctest.log" | grep -cE '\*\*\*Skipped' || true)"
CUDA_RAN="$(grep -E 'Test +#[0-9]+: test_cuda_linalg\.' "$OUTDIR/ctest.log" | grep -c 'Passed' || true)"
grep -E 'Test +#|tests passed|tests failed|Skipped|\(Failed\)|\(Timeout\)' "$OUTDIR/ctest.log" | tail -60
if [ "$CTEST_RC" != 0 ]; then
  grep -E '\(Failed\)|\(Timeout\)|\(SEGFAULT\)|\(Subprocess aborted\)' "$OUTDIR/ctest.log" | head -20
  record ctest FAIL "$TOTAL_LINE"
else
  record ctest ok "$TOTAL_LINE; $SKIPPED_ALL skipped overall ($((SECONDS - t)) s)"
fi
if [ "$CUDA_SKIPPED" != 0 ] || [ "$CUDA_RAN" = 0 ]; then
  record cuda-tests FAIL "$CUDA_RAN passed, $CUDA_SKIPPED SKIPPED (a GPU test must not skip here)"
else
  record cuda-tests ok "$CUDA_RAN passed, 0 skipped"
fi
M_SKIP="$(grep -E 'test_cuda_models\.' "$OUTDIR/ctest.log" | grep -cE '\*\*\*Skipped' || true)"; M_RAN="$(grep -E 'Test +#[0-9]+: test_cuda_models\.' "$OUTDIR/ctest.log" | grep -c 'Passed' || true)"; if [ "$M_SKIP" != 0 ] || [ "$M_RAN" = 0 ]; then record cuda-models-tests FAIL "$M_RAN passed, $M_SKIP SKIPPED (a GPU test must not skip here)"; else record cuda-models-tests ok "$M_RAN passed, 0 skipped"; fi
H_SKIP="$(grep -E 'test_cuda_hessian\.' "$OUTDIR/ctest.log" | grep -cE '\*\*\*Skipped' || true)"; H_RAN="$(grep -E 'Test +#[0-9]+: test_cuda_hessian\.' "$OUTDIR/ctest.log" | grep -c 'Passed' || true)"; if [ "$H_SKIP" != 0 ] || [ "$H_RAN" = 0 ]; then record cuda-hessian-tests FAIL "$H_RAN passed, $H_SKIP SKIPPED (a GPU test must not skip here)"; else record cuda-hessian-tests ok "$H_RAN passed, 0 skipped"; fi
# the GPU test binary's own report (device line, kernel registers)
"$TEST_BIN" info_reports_build_and_availability >"$LOGS/cuda-info.log" 2>&1
"$TEST_BIN" gpu_device_pointer_api >>"$LOGS/cuda-info.log" 2>&1
cat "$LOGS/cuda-info.log"

# with the GPU hidden, the same binary must report why (and refuse 'cuda') and skip
CUDA_VISIBLE_DEVICES= "$TEST_BIN" info_reports_build_and_availability >"$LOGS/no-gpu-path.log" 2>&1
NOGPU_INFO=$?
CUDA_VISIBLE_DEVICES= "$TEST_BIN" gpu_gemv >>"$LOGS/no-gpu-path.log" 2>&1
NOGPU_SKIP=$?
if [ "$NOGPU_INFO" = 0 ] && [ "$NOGPU_SKIP" = 77 ] && grep -q 'no GPU:' "$LOGS/no-gpu-path.log"; then
  record no-gpu-path ok "CUDA_VISIBLE_DEVICES='': $(grep -o 'no GPU: [^)]*' "$LOGS/no-gpu-path.log" | head -1 | cut -c1-70)"
else
  tail -20 "$LOGS/no-gpu-path.log"
  record no-gpu-path FAIL "see gpu-check-logs/no-gpu-path.log"
fi

# ---------------------------------------------------------------- compute-sanitizer (optional)
SAN="$(command -v compute-sanitizer || true)"
[ -z "$SAN" ] && for c in /usr/local/cuda/bin/compute-sanitizer "$(dirname "$REAL_NVCC")/compute-sanitizer"; do
  [ -x "$c" ] && SAN="$c" && break; done
if [ -n "$SAN" ]; then
  san_state=ok; san_detail=""
  run_san() {  # run_san TOOL TEST [BINARY] (skipped once the check has run 6 minutes)
    local log="$LOGS/sanitizer-$1-$2.log"
    if [ $((SECONDS - T0)) -gt 360 ]; then san_detail+="$1/$2: skipped (time); "; return; fi
    timeout 120 "$SAN" --tool "$1" "${3:-$TEST_BIN}" "$2" >"$log" 2>&1
    local errs
    errs="$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' "$log" | tail -1)"
    if [ -z "$errs" ]; then
      [ "$san_state" = ok ] && san_state=warn
      san_detail+="$1/$2: did not run; "
    elif [ "$errs" != 0 ]; then
      san_state=FAIL
      san_detail+="$1/$2: $errs errors; "
      grep -m 20 -E '=========' "$log"
    else
      san_detail+="$1/$2: 0; "
    fi
  }
  for t in gpu_gemm_device_views_both_tiles gpu_gemm_shapes_all_transposes gpu_gemv gpu_dot_nrm2_axpy \
           gpu_device_pointer_api; do run_san memcheck "$t"; done
  for t in gpu_gemm_device_views_both_tiles gpu_dot_nrm2_axpy; do run_san racecheck "$t"; done
  run_san synccheck gpu_gemm_device_views_both_tiles
  run_san memcheck gpu_space_ops_match_cpu "$BUILD/native/tests/test_cuda_hessian"
  record compute-sanitizer "$san_state" "$san_detail"
else
  record compute-sanitizer skip "not installed"
fi

# ---------------------------------------------------------------- benchmarks
BENCH_DIR="$BUILD/native/bench"
if "$BENCH_DIR/bench_cuda_linalg" --json "$OUTDIR/bench_cuda_linalg.json" 2>&1 | tee "$OUTDIR/bench_cuda_linalg.log"; then
  if grep -q 'no usable GPU' "$OUTDIR/bench_cuda_linalg.log"; then
    record bench_cuda_linalg FAIL "no usable GPU"
  else
    record bench_cuda_linalg ok "$(grep '^summary:' "$OUTDIR/bench_cuda_linalg.log" | sed 's/^summary: //')"
  fi
else
  record bench_cuda_linalg FAIL "see bench_cuda_linalg.log"
fi
if [ -x "$BENCH_DIR/bench_linalg" ]; then
  if timeout 300 "$BENCH_DIR/bench_linalg" --quick --json "$OUTDIR/bench_linalg.json" 2>&1 | tee "$OUTDIR/bench_linalg.log"; then
    record bench_linalg ok "--quick, JSON in bench_linalg.json"
  else
    record bench_linalg FAIL "see bench_linalg.log"
  fi
else
  record bench_linalg FAIL "bench_linalg was not built"
fi
if timeout 180 "$BENCH_DIR/bench_cuda_models" --json "$OUTDIR/bench_cuda_models.json" >"$OUTDIR/bench_cuda_models.log" 2>&1 && ! grep -q 'no usable GPU' "$OUTDIR/bench_cuda_models.log"; then record bench_cuda_models ok "$(grep '^summary:' "$OUTDIR/bench_cuda_models.log" | sed 's/^summary: //')"; else tail -5 "$OUTDIR/bench_cuda_models.log"; record bench_cuda_models FAIL "see bench_cuda_models.log"; fi
if timeout 300 "$BENCH_DIR/bench_cuda_hessian" --json "$OUTDIR/bench_cuda_hessian.json" >"$OUTDIR/bench_cuda_hessian.log" 2>&1 && ! grep -q 'no usable GPU' "$OUTDIR/bench_cuda_hessian.log"; then record bench_cuda_hessian ok "$(grep '^summary:' "$OUTDIR/bench_cuda_hessian.log" | sed 's/^summary: //')"; else tail -5 "$OUTDIR/bench_cuda_hessian.log"; record bench_cuda_hessian FAIL "see bench_cuda_hessian.log"; fi

# ---------------------------------------------------------------- attention (issue 6)
# The public attention API routed to CUDA (host pointers → upload → kernels →
# download; the resident squeezed decoder), then the CUDA attention benchmark and
# the CPU decode lookup (SqueezedDecoder vs squeezed_decode) for reference.
ATT_T="$BUILD/native/tests/test_cuda_attention"
if [ -x "$ATT_T" ]; then
  "$ATT_T" gpu_public_api_matches_cpu >"$LOGS/attention_api.log" 2>&1; att_rc=$?
  if [ "$att_rc" = 0 ]; then
    record attention_api ok "device='cuda' dense/sparse/kmeans/scores/prefill/decode/decoder match the CPU"
  else
    tail -5 "$LOGS/attention_api.log"; record attention_api FAIL "exit $att_rc (77 = skipped: no GPU); see gpu-check-logs/attention_api.log"
  fi
else
  record attention_api FAIL "test_cuda_attention was not built"
fi
if [ -x "$BENCH_DIR/bench_cuda_attention" ] && timeout 300 "$BENCH_DIR/bench_cuda_attention" --json "$OUTDIR/bench_cuda_attention.json" >"$OUTDIR/bench_cuda_attention.log" 2>&1 && ! grep -q 'no usable GPU' "$OUTDIR/bench_cuda_attention.log"; then record bench_cuda_attention ok "$(grep '^summary:' "$OUTDIR/bench_cuda_attention.log" | sed 's/^summary: //')"; else tail -5 "$OUTDIR/bench_cuda_attention.log" 2>/dev/null; record bench_cuda_attention FAIL "see bench_cuda_attention.log"; fi
if [ -x "$BENCH_DIR/bench_kmeans" ] && timeout 300 "$BENCH_DIR/bench_kmeans" --quick >"$LOGS/bench_kmeans.log" 2>&1; then record bench_kmeans ok "$(grep -E 'decode_(squeezed|decoder|dense)' "$LOGS/bench_kmeans.log" | awk '{print $1"="$NF}' | tr '\n' ' ')"; else record bench_kmeans warn "see gpu-check-logs/bench_kmeans.log"; fi

finish
