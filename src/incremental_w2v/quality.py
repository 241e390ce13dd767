"""Quality of versions: what is measured at commit, the gates, and evaluate/compare/promote/reject.

At every commit (``assess``, called by ``add_corpus._commit`` on the
in-memory model *before* the version is sealed) a version gets its scores,
its watch words' neighbours, its drift against its parent (and against the
last rebuild of its lineage), and the verdict of the gates. A version that
fails a gate is committed as a ``candidate``: ``current`` does not move
until a person runs ``promote`` (or ``reject`` to drop its corpus).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import version_lock
from .config import Config
from .errors import GateFailedError, UsageError
from .locking import store_lock
from .manifest import VERSION_REF, Event, Manifest, VersionEntry, VersionMeta, now_iso
from .quality_settings import Gate
from .store import Store
from .uris import redact

if TYPE_CHECKING:
    from .drift import Space

# drift, evaluation and vectors_io pull in gensim and scipy (about a second): they are
# imported inside the functions that score or compare, so a no-op cron run never pays.

logger = logging.getLogger(__name__)

@dataclass
class Assessment:
    fields: dict[str, Any] = field(default_factory=dict)
    passed: bool = True
    seconds: float = 0.0


def preflight(config: Config) -> None:
    """Read the user's evaluation files now, so a bad one fails before any training."""
    from .evaluation import read_pairs, read_questions, resolve_path

    if not config.evaluation.enabled:
        return
    for f in config.evaluation.word_pairs:
        read_pairs(resolve_path(f.path, config.base_dir))
    for f in config.evaluation.analogy_files:
        read_questions(resolve_path(f.path, config.base_dir))


# -- at commit ---------------------------------------------------------------------------


def assess(store: Store, config: Config, model: Any, fields: dict[str, Any]) -> Assessment:
    """Scores, watch neighbours, drift and gate verdict of a version about to be committed."""
    from .drift import watch_neighbours
    from .evaluation import evaluate_vectors
    from .vectors_io import counts_of

    started = time.perf_counter()
    kv = model.wv
    counts = counts_of(kv)
    out: dict[str, Any] = {}
    if config.evaluation.enabled:
        out["scores"] = evaluate_vectors(kv, counts, config.evaluation, config.base_dir)
    if config.watch:
        out["watch"] = {
            "k": config.drift.top_k,
            "neighbours": watch_neighbours(
                kv, counts, config.watch, config.drift.top_k, config.drift.neighbour_vocab
            ),
        }
    parent: str | None = fields.get("parent")
    if parent is not None and config.drift.record:
        out["drift"] = _drift_record(store, config, kv, counts, parent, fields["kind"])
    passed = True
    if parent is not None and config.gates:
        reference = _reference_scores(store, config, parent, out.get("scores", {}))
        out["gate"] = check_gates(config.gates, out.get("scores", {}), reference, parent)
        passed = bool(out["gate"]["passed"])
    return Assessment(fields=out, passed=passed, seconds=time.perf_counter() - started)


def _reference_scores(
    store: Store, config: Config, parent: str, scores: dict[str, Any]
) -> dict[str, Any]:
    """The parent's scores, re-measured if it was scored differently (e.g. another set)."""
    from .evaluation import evaluate_vectors
    from .vectors_io import counts_of

    recorded: dict[str, Any] = store.read_meta(parent).scores

    def same(a: Any, b: Any) -> bool:
        keys = ("kind", "total", "restrict_vocab")
        return isinstance(a, dict) and isinstance(b, dict) and all(
            a.get(k) == b.get(k) for k in keys)

    if all(same(recorded.get(n), scores.get(n)) for n in config.gates):
        return recorded
    logger.info("re-scoring %s with the current evaluation settings for the gates", parent)
    model = store.load_model(parent, mmap="r")
    fresh = evaluate_vectors(model.wv, counts_of(model.wv), config.evaluation, config.base_dir)
    return {**recorded, **fresh}


def _drift_record(
    store: Store, config: Config, kv: Any, counts: dict[str, int] | None, parent: str, kind: str
) -> dict[str, Any]:
    from .drift import Space, compare_spaces, summary

    new = Space(kv, counts, config.drift.neighbour_vocab)
    record: dict[str, Any] = {}
    parent_space = _space_of(store, parent, config)
    record["parent"] = {
        "against": parent,
        **summary(compare_spaces(parent_space, new, config.drift, config.base_dir, detail=False)),
    }
    rebuild = last_rebuild(store, parent)
    if kind != "rebuild" and rebuild is not None:
        if rebuild == parent:
            record["rebuild"] = record["parent"]
        else:
            space = _space_of(store, rebuild, config)
            record["rebuild"] = {
                "against": rebuild,
                **summary(compare_spaces(space, new, config.drift, config.base_dir, detail=False)),
            }
    return record


def _space_of(store: Store, version: str, config: Config) -> Space:
    from .drift import Space
    from .vectors_io import counts_of

    model = store.load_model(version, mmap="r")
    return Space(model.wv, counts_of(model.wv), config.drift.neighbour_vocab)


def ancestors(store: Store, version: str) -> list[VersionMeta]:
    """``version`` and its parents, newest first, as far back as the store still holds them."""
    listed = {v.version for v in store.read_manifest().versions}
    chain, seen = [], set()
    name: str | None = version
    while name is not None and name not in seen and name in listed:  # pruned: stop there
        seen.add(name)
        meta = store.read_meta(name)
        chain.append(meta)
        name = meta.parent
    return chain


def last_rebuild(store: Store, version: str) -> str | None:
    for meta in ancestors(store, version):
        if meta.kind == "rebuild":
            return meta.version
    return None


def updates_since_rebuild(store: Store, version: str) -> int:
    """Updates applied since the last rebuild (or since the base)."""
    n = 0
    for meta in ancestors(store, version):
        if meta.kind != "update":
            break
        n += 1
    return n


def check_gates(
    gates: dict[str, Gate],
    scores: dict[str, dict[str, Any]],
    reference: dict[str, Any],
    reference_version: str,
) -> dict[str, Any]:
    """Each gate's verdict; a metric that cannot be measured fails its gate."""
    checks: list[dict[str, Any]] = []
    for name, gate in gates.items():
        value = (scores.get(name) or {}).get("value")
        ref = (reference.get(name) or {}).get("value") if isinstance(reference, dict) else None
        if gate.min is not None:
            ok = value is not None and value >= gate.min
            checks.append({
                "metric": name, "rule": "min", "limit": gate.min, "value": value, "ok": ok,
                "message": (f"{name}: {value:.4f} meets min {gate.min}" if ok else
                            f"{name}: not measurable (no coverage), min {gate.min}"
                            if value is None else
                            f"{name}: {value:.4f} is below min {gate.min} by "
                            f"{gate.min - value:.4f}"),
            })
        if gate.max_drop is not None:
            if value is None:
                ok, msg = False, f"{name}: not measurable (no coverage), max_drop {gate.max_drop}"
            elif ref is None:
                ok, msg = True, f"{name}: {reference_version} has no score to compare with"
            else:
                drop = ref - value
                ok = drop <= gate.max_drop + 1e-12
                msg = (
                    f"{name}: {ref:.4f} ({reference_version}) -> {value:.4f}, "
                    f"{'drop' if drop > 0 else 'gain'} {abs(drop):.4f}"
                    + ("" if ok else f" exceeds max_drop {gate.max_drop} by "
                       f"{drop - gate.max_drop:.4f}")
                )
            checks.append({
                "metric": name, "rule": "max_drop", "limit": gate.max_drop, "value": value,
                "reference": ref, "ok": ok, "message": msg,
            })
    failures = [c["message"] for c in checks if not c["ok"]]
    return {"passed": not failures, "against": reference_version, "checks": checks,
            "failures": failures}


def gate_error(meta: VersionMeta, current: str | None, result: Any = None) -> GateFailedError:
    failures = "; ".join(meta.gate.get("failures", []))
    err = GateFailedError(
        f"{meta.version} ({', '.join(meta.added) or meta.kind}) failed the quality gate: "
        f"{failures}. It is kept as a candidate; current stays {current}",
        hint=f"review it with 'incw2v compare CONFIG {current} {meta.version}', then accept it "
        f"with 'incw2v promote CONFIG {meta.version}' or drop its corpus with "
        f"'incw2v reject CONFIG {meta.version}'",
    )
    err.result = result  # type: ignore[attr-defined]
    return err


# -- candidates and what later runs do with their corpora --------------------------------


def held_corpora(store: Store, manifest: Manifest) -> dict[str, tuple[str, str]]:
    """URI -> (version, status) of corpora added by candidates of ``current`` and rejects."""
    held: dict[str, tuple[str, str]] = {}
    for entry in manifest.versions:
        blocking = entry.status == "candidate" and entry.parent == manifest.current
        if not (blocking or entry.status == "rejected") or entry.kind != "update":
            continue
        meta = store.read_meta(entry.version)
        for rec in meta.corpora:
            if rec.applied_in == entry.version:
                held.setdefault(rec.uri, (entry.version, entry.status))
    return held


def screen_pending(store: Store, manifest: Manifest, pending: list[Any],
                   skipped: list[dict[str, str]]) -> list[Any]:
    """Drop rejected corpora (reported as skipped); stop at a corpus awaiting review."""
    held = held_corpora(store, manifest)
    kept = []
    for item in pending:
        version_status = held.get(redact(item.spec.uri))
        if version_status is None:
            kept.append(item)
            continue
        version, state = version_status
        if state == "rejected":
            skipped.append({"name": item.spec.name, "uri": redact(item.spec.uri),
                            "reason": f"rejected in {version}"})
            continue
        meta = store.read_meta(version)
        failures = "; ".join(meta.gate.get("failures", [])) or "failed the quality gate"
        raise GateFailedError(
            f"{item.spec.name} is awaiting review in candidate {version} ({failures}); "
            f"nothing was trained, current stays {manifest.current}"
            + (f", and {len(pending) - len(kept) - 1} later corpus(es) wait behind it"
               if len(pending) - len(kept) > 1 else ""),
            hint=f"accept it with 'incw2v promote CONFIG {version}', or drop the corpus with "
            f"'incw2v reject CONFIG {version}'; then run add-corpus again",
        )
    return kept


@contextmanager
def _locked_entry(
    config: Config, ref: str, command: str, wait: float
) -> Iterator[tuple[Store, Manifest, VersionEntry]]:
    """Under the store's lock: the store, its manifest and the entry ``ref`` names."""
    from .lineage import resolve_version

    store = Store.open(config.store_path, create=False)
    with store_lock(store.root, command, wait):
        version = resolve_version(store, ref)
        manifest = store.read_manifest()
        entry = manifest.entry(version)
        assert entry is not None
        yield store, manifest, entry


def promote(config: Config, version: str, wait: float = 0.0) -> dict[str, Any]:
    """Make a candidate (or rejected) version current against its gate verdict."""
    with _locked_entry(config, version, "promote", wait) as (store, manifest, entry):
        version = entry.version
        if entry.status == "committed":
            raise UsageError(
                f"{version} is not a candidate (it passed its gates or was promoted already)",
                hint="'incw2v rollback CONFIG VERSION' makes any committed version current",
            )
        meta = store.read_meta(version)
        failures = "; ".join(meta.gate.get("failures", [])) or "no gate verdict"
        before = manifest.current
        store.set_current(version, "promote", f"was {entry.status}, current was {before}; "
                          f"overrides: {failures}")
    logger.info("promoted %s over its gate verdict (%s)", version, failures)
    return {"version": version, "previous": before, "overrode": meta.gate.get("failures", [])}


def reject(config: Config, version: str, wait: float = 0.0) -> dict[str, Any]:
    """Mark a candidate rejected: later runs skip the corpora it added."""
    with _locked_entry(config, version, "reject", wait) as (store, manifest, entry):
        version = entry.version
        if entry.status != "candidate":
            raise UsageError(f"{version} is not a candidate (status {entry.status})",
                             hint="only a version a gate refused can be rejected")
        entry.status = "rejected"
        manifest.events.append(Event(at=now_iso(), action="reject", version=version,
                                     detail=", ".join(entry.added)))
        store.write_manifest(manifest)
    return {"version": version, "skipped_from_now_on": entry.added}


# -- evaluate and compare (read-only) ----------------------------------------------------


@dataclass
class Side:
    label: str
    kv: Any
    counts: dict[str, int] | None
    scores: dict[str, Any] | None  # recorded scores of a store version


def load_side(config: Config, ref: str) -> Side:
    """A store version (``v0003``, ``3``) or any file ``vectors_io.load_vectors`` accepts."""
    from .lineage import resolve_version
    from .vectors_io import counts_of, load_vectors

    if VERSION_REF.match(ref) and not Path(ref).exists():
        store = Store.open(config.store_path, create=False)
        name = resolve_version(store, ref)
        with version_lock.reading(store.root, name):  # prune must not delete it under us
            resolve_version(store, name)
            model = store.load_model(name, mmap="r")
            meta = store.read_meta(name)
        return Side(name, model.wv, counts_of(model.wv), meta.scores or None)
    loaded = load_vectors(ref)
    return Side(loaded.ref or redact(ref), loaded.kv, loaded.counts, None)


def evaluate(config: Config, version: str | None = None) -> dict[str, Any]:
    """Scores of a version (default current) computed now with the config's sets."""
    from .evaluation import evaluate_vectors
    from .lineage import resolve_version
    from .vectors_io import counts_of

    store = Store.open(config.store_path, create=False)
    name = resolve_version(store, version)
    with version_lock.reading(store.root, name):  # prune must not delete it under us
        resolve_version(store, name)
        model = store.load_model(name, mmap="r")
    started = time.perf_counter()
    scores = evaluate_vectors(model.wv, counts_of(model.wv), config.evaluation, config.base_dir)
    return {"version": name, "vocab_size": len(model.wv), "scores": scores,
            "seconds": round(time.perf_counter() - started, 3)}


def compare(config: Config, ref_a: str, ref_b: str) -> dict[str, Any]:
    """Scores side by side, vocabulary change, and drift from A to B."""
    a, b = load_side(config, ref_a), load_side(config, ref_b)
    return compare_sides(config, a, b)


def compare_sides(config: Config, a: Side, b: Side) -> dict[str, Any]:
    from .drift import Space, compare_spaces
    from .evaluation import evaluate_vectors

    sa = a.scores or evaluate_vectors(a.kv, a.counts, config.evaluation, config.base_dir)
    sb = b.scores or evaluate_vectors(b.kv, b.counts, config.evaluation, config.base_dir)
    scores = {
        name: {"a": (sa.get(name) or {}).get("value"), "b": (sb.get(name) or {}).get("value"),
               "coverage_a": (sa.get(name) or {}).get("coverage"),
               "coverage_b": (sb.get(name) or {}).get("coverage")}
        for name in dict.fromkeys([*sa, *sb])
    }
    result = compare_spaces(
        Space(a.kv, a.counts, config.drift.neighbour_vocab),
        Space(b.kv, b.counts, config.drift.neighbour_vocab),
        config.drift, config.base_dir,
    )
    return {"a": a.label, "b": b.label, "scores": scores, **result}


def format_compare(info: dict[str, Any]) -> str:
    def num(v: Any) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    voc = info["vocab"]
    lines = [f"A = {info['a']}, B = {info['b']}", "", f"{'metric':<14}{'A':>8}{'B':>8}"]
    for name, s in info["scores"].items():
        lines.append(f"{name:<14}{num(s['a']):>8}{num(s['b']):>8}   coverage "
                     f"{num(s['coverage_a'])} / {num(s['coverage_b'])}")
    lines += [
        "",
        f"vocabulary: A {voc['a']}, B {voc['b']}, shared {voc['shared']}, "
        f"added {voc['added']}, removed {voc['removed']}",
    ]
    if voc.get("added_top"):
        lines.append(f"  most frequent added: {', '.join(voc['added_top'][:10])}")
    lines += [
        f"anchors: {info['anchors']['source']} (mean cosine after mapping "
        f"{num(info['anchors']['mean_cosine'])})",
        f"aligned cosine of shared words: median {num(info['cosine']['median'])}, "
        f"p10 {num(info['cosine']['p10'])}  (drift = 1 - median = {num(info['drift'])})",
        f"top-{info['overlap']['k']} neighbour overlap: mean {num(info['overlap']['mean'])} "
        f"on {info['overlap']['words']} sampled words",
        "",
        f"{'band (rank)':<16}{'words':>8}{'cosine':>9}{'overlap':>9}",
    ]
    for band in info["bands"]:
        lines.append(f"{band['band']:<16}{band['words']:>8}{num(band['median_cosine']):>9}"
                     f"{num(band['overlap']):>9}")
    if info.get("moved"):
        lines += ["", "moved most (among the most frequent words):"]
        for m in info["moved"]:
            lines.append(f"  {m['word']} (rank {m['rank']}, cosine {m['cosine']:.3f}): "
                         f"gained {', '.join(m['gained'][:5]) or '-'}; "
                         f"lost {', '.join(m['lost'][:5]) or '-'}")
    return "\n".join(lines)


def format_rebuild(info: dict[str, Any]) -> str:
    t = info["timings"]
    head = (f"rebuilt the lineage of {info['replaces']} from scratch as {info['version']} "
            f"({info['status']}, vocabulary {info['vocab_size']}, read {t.get('read', 0):.1f}s, "
            f"train {t.get('train', 0):.1f}s)")
    return head + "\n\n" + format_compare(info["compare"])
