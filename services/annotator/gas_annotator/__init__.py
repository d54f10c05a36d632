"""gas_annotator: the annotation engine, its `gas annotate` command and the annotator service."""

import os

# Read once per process, when pyarrow's allocator (mimalloc) and numpy's OpenBLAS load: so set
# here, before any module of this package imports them. Every process the engine starts (its
# forkserver, the job process, the chunk workers and their bcftools forks) inherits them. A
# value the caller set wins.
# - MIMALLOC_PURGE_DELAY=-1, MIMALLOC_ALLOW_THP=0: keep freed memory mapped, in small pages.
#   Every chunk frees and reallocates the same few hundred MB; by default mimalloc gives freed
#   memory back to the kernel after a second and takes it again as fresh transparent huge
#   pages, which the kernel zeroes 2 MB at a time: 24 % of the engine's CPU samples were that
#   zeroing (perf, clear_page, 300k records). Keeping the memory is cheap because the engine's
#   processes live for one job, and small pages keep it from growing: ten alternated runs,
#   1M records, 2 workers, paired medians: system CPU -0.39 s, total CPU -0.28 s (7.28 s),
#   wall -0.12 s, peak RSS -8 MB (4M records: 491 -> 486 MB). Either setting alone raised RSS
#   (purge only, 4M: 534 MB) or CPU (small pages only).
# - OPENBLAS_NUM_THREADS=1: the engine does no linear algebra, but numpy's OpenBLAS starts a
#   thread per core in every process that imports it (~1 % of the CPU samples, spinning).
ENGINE_PROCESS_ENV = {
    "MIMALLOC_PURGE_DELAY": "-1",
    "MIMALLOC_ALLOW_THP": "0",
    "OPENBLAS_NUM_THREADS": "1",
}
for _name, _value in ENGINE_PROCESS_ENV.items():
    os.environ.setdefault(_name, _value)
