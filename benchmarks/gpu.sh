#!/usr/bin/env bash
# The standard benchmarks in one go, each writing its numbers with the device to $OUT/*.json.
#
#   benchmarks/gpu.sh [OUT]          (default OUT: bench-<platform>-<date>)
#
# Runs on whatever JAX sees (a GPU if jax[cuda] is installed, else the CPU):
#   speed        0-D sampling rate (table, RK4), phi4-0d example
#   lattice16    lattice flow 16x16 (fit, sample, ESS, against HMC)
#   lattice64    lattice flow 64x64 (fewer samples, fewer collocation configurations)
#   smc          SMC along the lattice flow's path, 16x16
#   hmc          PIK against HMC, phi4-0d example
# Sized to end within ~8 minutes on one H200 (most of it compilation and the HMC references);
# on 2 CPU cores it takes far longer: set PIKFLOW_BENCH_SMALL=1 for a quick check of the script.
# Every JSON has a "device" block ({count, platform, kind, processes}).
set -euo pipefail
platform=$(python -c "import jax; print(jax.devices()[0].platform)")
OUT=${1:-bench-${platform}-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
if [[ "${PIKFLOW_BENCH_SMALL:-0}" == 1 ]]; then
  SPEED="--n 100000 --n-rk4 10000 --repeats 1"
  L16="--L 8 --n 2000 --collocation 300 --hmc-samples 1000 --reference 2000 --chains 4 --select 500"
  L64="--L 16 --n 500 --steps 4 --collocation 200 --hmc-samples 500 --reference 1000 --chains 4 --select 200"
  SMC="--L 8 --particles 200 --replicas 2 --n 2000 --reference 2000 --chains 4"
  HMC="--n 100000 --chains 64 --hmc-n 200 --single-n 2000 --repeats 1"
else
  SPEED="--n 10000000 --n-rk4 1000000 --repeats 3"
  L16="--L 16 --n 100000 --collocation 2000 --reference 20000"
  L64="--L 64 --n 10000 --collocation 1000 --hmc-samples 2000 --reference 4000 --select 1000"
  SMC="--L 16 --particles 4000 --replicas 4 --n 100000"
  HMC="--n 1000000 --repeats 3"
fi
run() {  # name, then the bench command line
  local name=$1; shift
  local t0=$SECONDS
  echo "== $name: pikflow bench $*"
  pikflow bench "$@" --quiet --json "$OUT/$name.json" | tee "$OUT/$name.txt"
  echo "== $name: $((SECONDS - t0)) s"
}
run speed speed --example phi4-0d $SPEED
run lattice16 lattice $L16
run lattice64 lattice $L64
run smc smc $SMC
run hmc hmc --example phi4-0d $HMC
echo "all in $SECONDS s; numbers in $OUT/"
