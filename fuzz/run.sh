#!/usr/bin/env bash
# Builds and runs one fuzz target for a number of minutes, the way the figures in fuzz/README.md were made:
#   fuzz/run.sh TARGET MINUTES
# Environment (all optional):
#   FUZZ_TARGET_DIR  cargo's target dir for the instrumented build (default: target/fuzz, beside the normal build)
#   FUZZ_SANITIZER   address (default) or none
#   FUZZ_JOBS        parallel fuzzing processes (default 1; each gets MINUTES)
# New inputs the fuzzer finds go to a working corpus under the target dir (kept between runs), not to the committed
# seeds in fuzz/corpus/TARGET; crashes and timeouts go to fuzz/artifacts/TARGET/. The last lines printed are the
# run's figures: executions, coverage (cov/ft), and the artifacts written.
set -euo pipefail
usage="usage: fuzz/run.sh TARGET MINUTES"
target=${1:?$usage}
minutes=${2:?$usage}
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${FUZZ_TARGET_DIR:-$root/target/fuzz}
sanitizer=${FUZZ_SANITIZER:-address}
jobs=${FUZZ_JOBS:-1}
# Built as cargo-fuzz does by default: optimised, with debug assertions and overflow checks (an overflow is a crash).
# cargo-fuzz passes nightly-only flags (-Z sanitizer, -C passes=sancov…); this lets a stable toolchain take them.
export RUSTC_BOOTSTRAP=1
cd "$root"
[ -d "fuzz/corpus/$target" ] || { echo "no seeds in fuzz/corpus/$target" >&2; exit 2; }
cargo fuzz build -s "$sanitizer" --target-dir "$target_dir" "$target"
work="$target_dir/corpus/$target"
mkdir -p "$work" "fuzz/artifacts/$target"
log="$target_dir/logs/$target-$(date +%Y%m%d-%H%M%S).log"
mkdir -p "$(dirname "$log")"
before=$(ls "fuzz/artifacts/$target" | wc -l)
parallel=""
[ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"
set +e
cargo fuzz run -s "$sanitizer" --target-dir "$target_dir" "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time=$((minutes * 60)) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 $parallel \
    2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The jobs mode writes each worker's output to fuzz-N.log in the current directory.
[ "$jobs" -gt 1 ] && cat fuzz-*.log >> "$log" && rm -f fuzz-*.log
echo "== $target, $minutes min, sanitizer $sanitizer, exit $status (log: $log)"
grep -E '^#[0-9]+' "$log" | tail -1 || true
grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
echo "artifacts: $(( $(ls "fuzz/artifacts/$target" | wc -l) - before )) new in fuzz/artifacts/$target"
exit "$status"
