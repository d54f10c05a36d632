"""gas_annotator: the annotation engine, its `gas annotate` command and the annotator service."""

import os

# Read once per process, when pyarrow's allocator (mimalloc) and numpy's OpenBLAS load: so set
# here, before any module of this package imports them. Every process the engine starts (its
# forkserver, the job process, the chunk workers and their bcftools forks) inherits them. A
# value the caller set wins.
# - MIMALLOC_PURGE_DELAY=-1, MIMALLOC_ALLOW_THP=0: keep freed memory mapped, in small pages.
#   Every chunk frees and reallocates the same few hundred MB; by default mimalloc gives it back
#   to the kernel after a second and takes it again as fresh huge pages the kernel must zero
#   (a quarter of the engine's CPU). The engine's processes live for one job, so keeping it is
#   cheap; small pages keep RSS from growing. Measurements: docs/annotation.md, "Allocator
#   settings".
# - OPENBLAS_NUM_THREADS=1: the engine does no linear algebra, but numpy's OpenBLAS starts a
#   thread per core in every process that imports it.
ENGINE_PROCESS_ENV = {
    "MIMALLOC_PURGE_DELAY": "-1",
    "MIMALLOC_ALLOW_THP": "0",
    "OPENBLAS_NUM_THREADS": "1",
}
for _name, _value in ENGINE_PROCESS_ENV.items():
    os.environ.setdefault(_name, _value)
