#!/usr/bin/env bash
# Compile cost of the DEA pipeline example, as ratios to a translation unit that
# includes the same standard (system) headers and nothing of conveyor.
#
#   bench/compile_time.sh                  # measures the committed HEAD
#   bench/compile_time.sh --working-tree   # measures the files as they are now
#   RUNS=5 CXX=g++-12 bench/compile_time.sh
#
# Measured, each as user + sys CPU seconds of the compiler (GNU time), median of
# RUNS runs (default 3) taken round-robin so machine noise hits all alike:
#   baseline      a generated TU including every system header that a conveyor
#                 header reachable from the example includes directly (found
#                 with g++ -M, then grep '#include <...>'), plus the example's
#                 own system includes; Boost is third-party, not standard, and
#                 is counted as conveyor's cost (a second line shows it alone)
#   umbrella      #include <conveyor/conveyor.hpp> alone, -O2 -c, against its own
#                 baseline (the system headers reachable from the umbrella)
#   parse         examples/docs/dea_pipeline.cpp with -fsyntax-only
#   full          examples/docs/dea_pipeline.cpp with -O2 -c
# The compiler is run directly (no ccache), output to a temporary directory.
# By default the sources come from `git archive HEAD`, so the figures belong to
# the printed commit even while someone edits the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${RUNS:-3}
cxx=${CXX:-g++}
working_tree=0
[[ ${1:-} == --working-tree ]] && working_tree=1

command -v /usr/bin/time >/dev/null || { echo "compile_time.sh: needs GNU time (/usr/bin/time)" >&2; exit 2; }
cxx_path=$(readlink -f "$(command -v "$cxx")")
[[ $cxx_path == *ccache* ]] && { echo "compile_time.sh: $cxx is ccache; set CXX to the real compiler" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
commit=$(git rev-parse --short=12 HEAD)
if ((working_tree)); then
  root=$PWD
  dirty=$(git status --porcelain -- include examples/docs/dea_pipeline.cpp | wc -l)
  source_note="working tree at $commit ($dirty changed or new files under include/ and the example)"
else
  root=$work/src
  mkdir -p "$root"
  git archive HEAD include examples/docs/dea_pipeline.cpp | tar -x -C "$root"
  source_note="commit $commit ($(git log -1 --format=%cd --date=format:'%Y-%m-%d %H:%M' HEAD))"
fi

example=$root/examples/docs/dea_pipeline.cpp
flags=(-std=c++20 -O2 -I"$root/include")

echo '#include <conveyor/conveyor.hpp>' >"$work/umbrella.cpp"

# The files a TU reads, one per line (g++ -M, backslash continuations dropped).
dependencies() { "$cxx" "${flags[@]}" -M "$1" | tr -s " \\\\" '\n' | grep . | sort -u; }

# make_baseline TU NAME: writes NAME.cpp including every system header that TU
# and the conveyor headers reachable from it name in #include <...> (minus
# conveyor's own and Boost's, which go to NAME_boost.cpp), and sets
# header_count / boost_count.
make_baseline() {
  local tu=$1 name=$2 includes header deps=()
  mapfile -t deps < <(dependencies "$tu" | grep -F "$root/include/conveyor/")
  includes=$( (grep -h -E '^\s*#\s*include\s*<' "${deps[@]}" "$tu" || true) |
    sed -E 's/^\s*#\s*include\s*<([^>]+)>.*/\1/' | sort -u)
  local std_headers=() boost_headers=()
  for header in $includes; do
    case $header in
      conveyor/*) ;;
      boost/*) boost_headers+=("$header") ;;
      *)
        # Keep only headers this compiler finds (a guarded include of an absent
        # optional dependency would break the baseline).
        if echo "#include <$header>" | "$cxx" "${flags[@]}" -x c++ -E - >/dev/null 2>&1; then
          std_headers+=("$header")
        fi
        ;;
    esac
  done
  printf '#include <%s>\n' "${std_headers[@]}" >"$work/$name.cpp"
  printf '#include <%s>\n' "${boost_headers[@]}" >"$work/${name}_boost.cpp"
  header_count=${#std_headers[@]} boost_count=${#boost_headers[@]}
}
make_baseline "$work/umbrella.cpp" umbrella_baseline
umbrella_headers=$header_count
make_baseline "$example" baseline
example_headers=$header_count example_boost=$boost_count

# Sanity check: every system header the example pulls in, except Boost's and
# those only Boost pulls in, is pulled in by the baseline too.
system_headers() { dependencies "$1" | grep -E '^/' | grep -v -F "$root/"; }
system_headers "$example" >"$work/example.deps"
system_headers "$work/baseline.cpp" >"$work/baseline.deps"
{ [[ -s $work/baseline_boost.cpp ]] && system_headers "$work/baseline_boost.cpp"; cat "$work/baseline.deps"; } | sort -u >"$work/covered.deps"
missing=$(comm -23 "$work/example.deps" "$work/covered.deps" | wc -l)

# name|arguments
cases=(
  "baseline|-c $work/baseline.cpp"
  "boost|-c $work/baseline_boost.cpp"
  "umbrella_baseline|-c $work/umbrella_baseline.cpp"
  "umbrella|-c $work/umbrella.cpp"
  "parse|-fsyntax-only $example"
  "full|-c $example"
)
declare -A samples
for ((run = 1; run <= runs; ++run)); do
  for entry in "${cases[@]}"; do
    name=${entry%%|*}
    [[ $name == boost && ! -s $work/baseline_boost.cpp ]] && continue
    # shellcheck disable=SC2086  # the arguments are split on purpose
    /usr/bin/time -f '%U %S' -o "$work/time" "$cxx" "${flags[@]}" ${entry#*|} -o "$work/out.o"
    samples[$name]+="$(awk '{printf "%.2f", $1 + $2}' "$work/time") "
  done
  echo "run $run of $runs done" >&2
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
declare -A seconds
for name in "${!samples[@]}"; do seconds[$name]=$(median "${samples[$name]}"); done

# row LABEL SECONDS BASELINE_SECONDS SAMPLES
row() { awk -v label="$1" -v s="$2" -v b="$3" -v runs="$4" 'BEGIN {printf "  %-60s %6.2f s %6.2fx   (%s)\n", label, s, s / b, runs}'; }
base=${seconds[baseline]}
echo "compile cost of examples/docs/dea_pipeline.cpp: $("$cxx" --version | head -1), ${flags[*]:0:2}"
echo "  sources: $source_note"
echo "  user+sys CPU seconds, median of $runs runs (the runs in brackets); ratio to a baseline TU that"
echo "  includes the same system headers; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
row "baseline: the example's $example_headers standard/system headers" "$base" "$base" "${samples[baseline]% }"
row "example, -fsyntax-only (parsing and template instantiation)" "${seconds[parse]}" "$base" "${samples[parse]% }"
row "example, -O2 -c (full)" "${seconds[full]}" "$base" "${samples[full]% }"
awk -v f="${seconds[full]}" -v p="${seconds[parse]}" -v b="$base" \
  'BEGIN {printf "  %-60s %6.2f s %6.2fx\n", "  of which code generation (full - parse)", f - p, (f - p) / b}'
if [[ -n ${seconds[boost]:-} ]]; then
  row "  of which Boost (its $example_boost headers alone, -O2 -c)" "${seconds[boost]}" "$base" "${samples[boost]% }"
fi
row "umbrella baseline: its $umbrella_headers standard/system headers" "${seconds[umbrella_baseline]}" "${seconds[umbrella_baseline]}" "${samples[umbrella_baseline]% }"
row "umbrella <conveyor/conveyor.hpp> alone, -O2 -c" "${seconds[umbrella]}" "${seconds[umbrella_baseline]}" "${samples[umbrella]% }"
row "  (umbrella vs the example's baseline)" "${seconds[umbrella]}" "$base" "${samples[umbrella]% }"
echo "  check: system headers the example pulls in that neither its baseline nor Boost does: $missing"
