#!/usr/bin/env bash
# Compares the DEA TSV pipeline at an older commit with the working tree, in one
# run: bench/source/dea_drive.cpp is compiled against both commits' headers
# (same compiler, same flags), then
#   1. callgrind counts each one's instructions (repeatable on a shared machine),
#   2. the two run alternately `rounds` times; the median rows/s of each is printed,
# and both as a ratio new / old.
#   bench/compare_commits.sh <old-commit> [tsv] [epochs=5] [rounds=5]
# The TSV defaults to ../shared/data/fakename_1k_bf_encoded.tsv repeated 20 times.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/compare_commits.sh <old-commit> [tsv] [epochs] [rounds]}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tsv=${2:-}
epochs=${3:-5}
rounds=${4:-5}
if [[ -z "$tsv" ]]; then
  src=../shared/data/fakename_1k_bf_encoded.tsv
  [[ -f "$src" ]] || { echo "no $src: pass a TSV of the DEA layout"; exit 1; }
  tsv=$work/dea.tsv
  head -1 "$src" > "$tsv"
  for _ in $(seq 20); do tail -n +2 "$src" >> "$tsv"; done
fi
mkdir -p "$work/old"
git archive "$old" include | tar -x -C "$work/old"
flags=(-std=c++20 -O2 -g -DNDEBUG)
g++ "${flags[@]}" -I"$work/old/include" bench/source/dea_drive.cpp -o "$work/drive_old"
g++ "${flags[@]}" -Iinclude bench/source/dea_drive.cpp -o "$work/drive_new"
echo "old: $(git rev-parse --short "$old"), new: working tree at $(git rev-parse --short HEAD); $(wc -l < "$tsv") lines"
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$tsv" 2 2>&1 | awk '/Collected/ {print $4}'; }
old_ir=$(count "$work/drive_old")
new_ir=$(count "$work/drive_new")
echo "instructions, 2 epochs: old $old_ir, new $new_ir, new/old $(awk -v a="$new_ir" -v b="$old_ir" 'BEGIN {printf "%.4f", a / b}')"
old_rates=() new_rates=()
for _ in $(seq "$rounds"); do
  old_rates+=("$("$work/drive_old" "$tsv" "$epochs" | awk '{print $(NF-1)}')")
  new_rates+=("$("$work/drive_new" "$tsv" "$epochs" | awk '{print $(NF-1)}')")
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
old_median=$(median "${old_rates[@]}")
new_median=$(median "${new_rates[@]}")
echo "rows/s, median of $rounds alternating runs of $epochs epochs: old $old_median, new $new_median," \
     "new/old $(awk -v a="$new_median" -v b="$old_median" 'BEGIN {printf "%.3f", a / b}')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
