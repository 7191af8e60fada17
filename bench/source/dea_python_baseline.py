#!/usr/bin/env python3
"""The DEA preprocessing as the original Python implementation does it.

Usage: dea_python_baseline.py <file.tsv> [--rows N] [--batch-size B]

Method (the original's, see ../shared/data/README.md):
  * pandas.read_csv(sep='\\t', dtype=str, keep_default_na=False, quoting as
    Python's csv module), the first N rows only (--rows; all rows when 0);
  * features: Series.apply per row, one tensor per row built from a list of
    float per character of the bit string;
  * labels: DataFrame.apply(axis=1) per row: concatenate every column but the
    last two, delete '"' '.' '/', strip, lowercase, take adjacent pairs without
    a space, and set 1.0 at `alphabet.index(gram)` (a linear search of the
    1036-gram list) in a fresh per-row tensor;
  * a Dataset over those tensors and a DataLoader (batch_size B, default
    collate = torch.stack) that the loop consumes, touching every batch.

With torch missing, the per-row tensors are numpy float32 arrays and batches
are np.stack'ed; the output says which backend ran.

Timing: from read_csv to the last batch consumed (imports excluded), wall
clock and this process's CPU time. The last line of output is machine-read by
bench/source/dea_tsv.cpp:
  python_baseline backend=torch rows=N seconds=S cpu_seconds=C rows_per_second=R ones_x=X ones_y=Y
where ones_x/ones_y count the 1.0 values of all features/labels (a cross-check
against the C++ pipelines on the same rows).
"""
import argparse
import csv
import string
import sys
import time

import pandas as pd

try:
    import torch
    from torch.utils.data import DataLoader, Dataset

    BACKEND = "torch"
except ImportError:  # the benchmark still runs, and says so
    import numpy as np

    BACKEND = "numpy"


def dea_alphabet():
    """The 1036 two-grams in the original's order."""
    letters, digits = string.ascii_lowercase, string.digits
    return ([a + b for a in letters for b in letters] +
            [a + d for a in letters for d in digits] +
            [a + b for a in digits for b in digits])


def to_row_tensor(values):
    if BACKEND == "torch":
        return torch.tensor(values, dtype=torch.float32)
    return np.array(values, dtype=np.float32)


def bit_string_to_tensor(bits):
    return to_row_tensor([float(c) for c in bits])


def extract_two_grams(text):
    for removed in ('"', ".", "/"):
        text = text.replace(removed, "")
    text = text.strip().lower()
    return [text[i:i + 2] for i in range(len(text) - 1) if " " not in text[i:i + 2]]


def label_to_tensor(grams, alphabet):
    label = [0.0] * len(alphabet)
    for gram in grams:
        try:
            label[alphabet.index(gram)] = 1.0  # the original's linear search
        except ValueError:
            pass  # a gram outside the alphabet (digit-letter, punctuation) is ignored
    return to_row_tensor(label)


def batches(features, labels, batch_size):
    if BACKEND == "torch":
        class BloomFilterDataset(Dataset):
            def __len__(self):
                return len(features)

            def __getitem__(self, index):
                return features[index], labels[index]

        yield from DataLoader(BloomFilterDataset(), batch_size=batch_size, shuffle=False, num_workers=0)
    else:
        for start in range(0, len(features), batch_size):
            yield (np.stack(features[start:start + batch_size]),
                   np.stack(labels[start:start + batch_size]))


def count_ones(batch):
    if BACKEND == "torch":
        return int(torch.count_nonzero(batch))
    return int(np.count_nonzero(batch))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--rows", type=int, default=20000, help="first N rows (0: all)")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    alphabet = dea_alphabet()

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    frame = pd.read_csv(args.path, sep="\t", dtype=str, keep_default_na=False,
                        quoting=csv.QUOTE_MINIMAL, nrows=args.rows or None)
    encoding = frame.columns[-2]
    features = frame[encoding].apply(bit_string_to_tensor).tolist()
    labels = frame.apply(
        lambda row: label_to_tensor(extract_two_grams("".join(row.iloc[:-2].astype(str))), alphabet),
        axis=1).tolist()
    rows = ones_x = ones_y = 0
    for x, y in batches(features, labels, args.batch_size):
        rows += x.shape[0]
        ones_x += count_ones(x)
        ones_y += count_ones(y)
    seconds, cpu_seconds = time.perf_counter() - wall_start, time.process_time() - cpu_start

    print(f"python_baseline backend={BACKEND} rows={rows} seconds={seconds:.3f} "
          f"cpu_seconds={cpu_seconds:.3f} rows_per_second={rows / seconds:.1f} "
          f"ones_x={ones_x} ones_y={ones_y}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
