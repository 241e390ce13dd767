"""All text the ``incw2v`` commands print: one function per kind of result.

``--json`` prints a result's ``to_dict()`` instead; nothing else is printed on
stdout. Library code never prints: it logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the results' modules import gensim; rendering needs only their fields
    from incremental_w2v.align.commands import AlignResult
    from incremental_w2v.lineage import Validated
    from incremental_w2v.quality.compare import Comparison, Evaluation
    from incremental_w2v.quality.report import Reported
    from incremental_w2v.store.ops import (
        Exported,
        History,
        Moved,
        Pruned,
        Rejected,
        Repaired,
        VersionRow,
    )
    from incremental_w2v.train.add_corpus import AddResult
    from incremental_w2v.train.plan import Status
    from incremental_w2v.train.rebuild import Rebuilt


def num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def validated(result: Validated) -> str:
    return f"{result.config}: OK (store {result.store}, {result.queue} queue entries)"


def added(result: AddResult) -> str:
    if not result.applied:
        return (f"nothing to do: current version {result.current}, {len(result.skipped)} "
                "corpora already applied")
    done = ", ".join(f"{a['version']} ({a['name']})" for a in result.applied)
    return f"applied {len(result.applied)} corpus(es): {done}; current version {result.current}"


def status(result: Status) -> str:
    pending = ", ".join(p["name"] for p in result.pending) or "none"
    text = (f"current: {result.current or 'none'} (vocabulary {result.vocab_size}, "
            f"{result.versions} versions); pending: {pending}")
    if result.candidates:
        text += f"; candidates awaiting review: {', '.join(result.candidates)}"
    return text


def _what(row: VersionRow) -> str:
    if row.added:
        return "+" + ", ".join(row.added)
    # A rebuild adds no corpus: it retrains on all of its parent's.
    return f"all {len(row.corpora)} corpora of {row.parent}" if row.parent else ""


def history(result: History) -> str:
    lines = [
        f"{'*' if r.current else ' '} {r.version}  {r.created_at}  {r.kind:<7} "
        f"{r.status:<9} vocab {r.vocab_size:>8}  {_what(r)}"
        + "".join(f"  [{e['action']} {e['at']}]" for e in r.events
                  if e["action"] in ("promote", "reject"))
        for r in result.versions
    ]
    return "\n".join(lines) or "no versions yet"


def rolled_back(result: Moved) -> str:
    return f"current version is now {result.current} (was {result.previous})"


def promoted(result: Moved) -> str:
    return (f"current version is now {result.current} (was {result.previous}); "
            "override recorded in the lineage")


def rejected(result: Rejected) -> str:
    return (f"rejected {result.version}; later runs skip "
            f"{', '.join(result.skipped_from_now_on) or 'nothing'}")


def exported(result: Exported) -> str:
    return f"exported {result.version} as {result.format}: {', '.join(result.files)}"


def pruned(result: Pruned) -> str:
    deleted = ", ".join(result.deleted) or "nothing"
    held = f" ({', '.join(result.held)} held open by a reader)" if result.held else ""
    return f"deleted {deleted}; kept {', '.join(result.kept)}{held}"


def repaired(result: Repaired) -> str:
    if not result.rebuilt:
        return (f"the manifest is intact ({len(result.versions)} version(s), current "
                f"{result.current}); nothing to repair")
    lines = [f"rebuilt the manifest from {len(result.versions)} version(s): "
             f"{', '.join(result.versions) or 'none'}; current is now {result.current}"]
    if result.candidates:
        lines.append(f"candidates (they failed a gate): {', '.join(result.candidates)}")
    if result.left_out:
        lines.append(f"left out (meta.json unreadable): {', '.join(result.left_out)}")
    if result.damaged_manifest:
        lines.append(f"the damaged manifest was kept as {result.damaged_manifest}")
    lines.append("rollbacks and promotions were recorded only in the lost manifest: if another "
                 "version was current, 'incw2v rollback CONFIG VERSION'")
    return "\n".join(lines)


def scores(values: dict[str, dict[str, Any]]) -> list[str]:
    """One readable line per metric."""
    lines = []
    for name, s in values.items():
        value = "n/a" if s.get("value") is None else f"{s['value']:.4f}"
        extra = f", restrict_vocab {s['restrict_vocab']}" if s.get("restrict_vocab") else ""
        lines.append(
            f"{name:<12} {s['kind']:<8} {value:>7}  coverage {s['covered']}/{s['total']} "
            f"({100 * s['coverage']:.1f}%){extra}"
        )
    return lines


def evaluated(result: Evaluation) -> str:
    return "\n".join([f"{result.version} (vocabulary {result.vocab_size})",
                      *scores(result.scores)])


def compared(result: Comparison) -> str:
    return comparison(result.to_dict())


def comparison(info: dict[str, Any]) -> str:
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


def rebuilt(result: Rebuilt) -> str:
    info = result.to_dict()
    t = info["timings"]
    head = (f"rebuilt the lineage of {info['replaces']} from scratch as {info['version']} "
            f"({info['status']}, vocabulary {info['vocab_size']}, read {t.get('read', 0):.1f}s, "
            f"train {t.get('train', 0):.1f}s)")
    return head + "\n\n" + comparison(info["compare"])


def reported(result: Reported) -> str:
    return f"wrote {result.output} ({result.versions} versions, {result.plots} plots)"


def align_summary(result: AlignResult) -> str:
    d = result.diagnostics
    h = d["held_out"]
    anchors = d["anchors"]
    lines = []
    if result.command == "align":
        lines.append(
            f"mapped {result.source_vocab} words of {result.source} into the space of "
            f"{result.target} ({d['method']}, {anchors['fit']} anchors, "
            f"{anchors['held_out']} held out)"
        )
    else:
        m = result.merge or {}
        lines.append(
            f"merged {result.source} into {result.target}: {result.vocab_size} words "
            f"({m.get('shared', 0)} shared, {m.get('from_source', 0)} mapped from SOURCE; "
            f"{d['method']}, {anchors['fit']} anchors, {anchors['held_out']} held out)"
        )
    if h["p_at_1_csls"] is not None:
        lines.append(
            f"held-out P@1 {h['p_at_1_cosine']:.3f} cosine / {h['p_at_1_csls']:.3f} CSLS, "
            f"P@10 {h['p_at_10_cosine']:.3f} / {h['p_at_10_csls']:.3f}, "
            f"mean cosine {h['mean_cosine']:.3f} (random pairs {h['mean_cosine_random']:.3f}); "
            f"distortion "
            f"{d['distortion']['mean_abs_cosine_change']:.3f}; verdict: {d['verdict']}"
        )
    if d["warnings"]:
        lines.append(f"{len(d['warnings'])} warning(s), logged above and in the metadata")
    lines.append(f"wrote {result.output} ({result.format})")
    return "\n".join(lines)
