#!/usr/bin/env bash
# Runs every built micro-benchmark, one after the other (never two at once:
# they would measure each other), and writes one JSON file per benchmark.
#
#   bench/micro/run_all.sh [RESULTS_DIR [BUILD_DIR]] [--benchmark_flag ...]
#
# RESULTS_DIR  where NAME.json files go (default: results/micro)
# BUILD_DIR    where the executables are (default: build/release/bench/micro)
# Relative defaults are taken from the repository root; paths you give are
# taken from the current directory. Arguments starting with "--" go to every
# benchmark, e.g. --benchmark_min_time=0.05 for a quick pass or
# --benchmark_repetitions=5 for medians on a noisy machine.
#
# Nothing is pinned here: the benchmarks that care pin their own threads.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

positional=()
benchmark_flags=()
for arg in "$@"; do
    case "$arg" in
        -h | --help)
            sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        --*) benchmark_flags+=("$arg") ;;
        *) positional+=("$arg") ;;
    esac
done
if ((${#positional[@]} > 2)); then
    echo "run_all.sh: too many arguments (see --help)" >&2
    exit 2
fi
results_dir=${positional[0]:-$repo_root/results/micro}
build_dir=${positional[1]:-$repo_root/build/release/bench/micro}

# The order of the course: cheapest claims first.
benchmarks=(bench_syscall bench_context_switch bench_spawn bench_multiplex bench_copy_paths)

available=()
for name in "${benchmarks[@]}"; do
    if [[ -x "$build_dir/$name" ]]; then
        available+=("$name")
    else
        echo "run_all.sh: $build_dir/$name not built, skipped" >&2
    fi
done
if ((${#available[@]} == 0)); then
    echo "run_all.sh: no micro-benchmark found in $build_dir (build the release preset first)" >&2
    exit 1
fi

mkdir -p "$results_dir"
failed=0
step=0
for name in "${available[@]}"; do
    step=$((step + 1))
    echo "[$step/${#available[@]}] $name -> $results_dir/$name.json"
    start=$SECONDS
    if ! "$build_dir/$name" --benchmark_out="$results_dir/$name.json" \
        --benchmark_out_format=json "${benchmark_flags[@]}"; then
        echo "run_all.sh: $name failed" >&2
        failed=$((failed + 1))
    fi
    echo "[$step/${#available[@]}] $name done in $((SECONDS - start)) s"
done

if ((failed > 0)); then
    echo "run_all.sh: $failed of ${#available[@]} benchmarks failed" >&2
    exit 1
fi
echo "all ${#available[@]} micro-benchmarks done; results in $results_dir"
