"""``init``: a commented starter config that validates, with the required keys marked.

Every top-level key of the schema appears in it, set or commented out with its
default, so that a user reads in one file what can be set (the test checks it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from incremental_w2v.errors import OutputError
from incremental_w2v.fsutil import atomic_write_bytes

STARTER = """\
# incw2v config: one lineage of Word2Vec models, kept current as new corpora arrive.
# Keys marked REQUIRED must be set; every other key shows its default and may be left out.
# Relative paths resolve against this file's folder. Check it with: incw2v validate CONFIG
# Every key: docs/config.md; more in docs/lineage.md, docs/publish.md, docs/quality.md.

store: ./store                   # REQUIRED: the folder that keeps the versions (created),
                                 # or s3://bucket/prefix (docs/store.md)
# store_options: {}              # S3 stores: endpoint_url, cache_dir, cache_max_bytes,
                                 # lease_seconds, leftover_grace_seconds

base:                            # REQUIRED: where the lineage starts; exactly one of:
  corpus: data/base.txt.gz       #   a corpus: a file, glob, folder or URI (s3://, https://)
  # model: models/full.model     #   or an existing *full* gensim Word2Vec model

queue:                           # the corpora to add, in order; each run applies the new ones
  - uri: data/dumps/             #   a folder: every file in it, in sorted order
    name: dumps
  # - uri: s3://bucket/dumps/2025-*.txt.zst
  #   format: text               #   text | jsonl | wikipedia | stackexchange (docs/formats.md)

# log_file: incw2v.log           # also log to this file (cron: keep the history of runs)

# model:                         # gensim Word2Vec parameters, fixed for the lineage's life
#   type: word2vec               # word2vec | fasttext
#   vector_size: 100
#   window: 5
#   min_count: 5                 # applied to the counts summed over every corpus so far
#   sg: 0
#   negative: 5                  # > 0: updates need negative sampling (hs: 1 is refused)
#   epochs: 5
#   workers: 0                   # 0: one training thread per core
#   seed: 1

# update: {alpha: 0.025, min_alpha: 0.0001, epochs: null, budget: 1.5, alpha_decay: 1.0,
#          freeze_epochs: 0}      # epochs null: as many as fit budget x a plain update (4)
# rehearsal: {buffer_tokens: 16000000, share: 0.875, schedule: ramp, consolidate: 0.0,
#             consolidate_alpha: 0.005, seed: 1}   # replay of earlier data, in tokens
# ledger: {max_size: 5000000}    # distinct tokens counted; the rarest non-model ones pruned
# tokenize: {mode: simple}       # simple | whitespace | regex (docs/formats.md)
# encoding_errors: strict        # strict | replace
# sources: {s3_endpoint_url: null}   # an S3-compatible endpoint (MinIO, Ceph)

# evaluation: {enabled: true, sets: [wordsim353, simlex999, analogies], restrict_vocab: 30000}
# watch: [government, film]      # words whose neighbours every version records
# drift: {anchors: 10000, top_k: 10}
# gates: {wordsim353: {max_drop: 0.02}}   # a worse version waits as a candidate (exit 3)
# rebuild: {every: null, max_drift: null, min_overlap: null}   # automatic full retrains

# retention: {keep: 10}          # keep the arrays of the 10 newest versions (and always the
#                                # current one and the last rebuild); history stays whole
# publish:                       # after every change of the current version, write it here
#   - to: /srv/models/news       # a folder, or s3://bucket/prefix
#     formats: [word2vec-binary] # word2vec-text | word2vec-binary | keyedvectors
"""


@dataclass
class Initialised:
    """``init``: the starter config written."""

    config: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_starter(path: Path, force: bool = False) -> Initialised:
    """Write :data:`STARTER` to ``path``; an existing file is replaced only with ``force``."""
    if not force and (path.exists() or path.is_symlink()):
        raise OutputError(f"{path} exists; init does not replace it unless told to",
                          hint="pass --force to replace it, or give another CONFIG path")
    atomic_write_bytes(path, STARTER.encode())
    return Initialised(config=str(path))
