"""All text the ``incw2v`` commands print: one function per kind of result.

``--json`` prints a result's ``to_dict()`` instead; nothing else is printed on
stdout. Library code never prints: it logs.

Every string that comes from the user or from a file (names, URIs, reasons,
event details, versions and times read from the store, error texts) passes
through ``uris.printable`` (one value) or :func:`joined` (a list), as the log
lines do, so that none can move the cursor or forge a line; only our own
literals and numbers are printed as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from incremental_w2v.errors import IncW2VError
from incremental_w2v.quality.summary import quality_line
from incremental_w2v.uris import printable

if TYPE_CHECKING:  # the results' modules import gensim; rendering needs only their fields
    from incremental_w2v.align.commands import AlignResult
    from incremental_w2v.config.starter import Initialised
    from incremental_w2v.lineage import Validated
    from incremental_w2v.quality.compare import Comparison, Evaluation
    from incremental_w2v.quality.report import Reported
    from incremental_w2v.store.ops import (
        Excluded,
        Exported,
        History,
        Moved,
        Pruned,
        Published,
        Rejected,
        Repaired,
        VersionRow,
    )
    from incremental_w2v.train.add_corpus import AddResult
    from incremental_w2v.train.plan import Status
    from incremental_w2v.train.rebuild import Rebuilt


def error(exc: IncW2VError) -> str:
    """An error as the CLI prints it: the message, each problem, the hint; each escaped
    on its own (its own lines are the only line breaks)."""
    problems: list[str] = getattr(exc, "problems", [])
    head = getattr(exc, "headline", exc.message) if problems else exc.message
    lines = [safe(head), *(f"  - {printable(p)}" for p in problems)]
    if exc.hint:
        lines.append(f"  hint: {printable(exc.hint)}")
    return "\n".join(lines)


def safe(text: str) -> str:
    """One of our messages, which may span lines (a YAML snippet): no control character
    but its line breaks, and its later lines indented so none passes for a line of ours."""
    lines = [printable(line) for line in text.split("\n")]
    return "\n".join([lines[0], *(f"  {ln}" if ln and not ln[:1].isspace() else ln
                                   for ln in lines[1:])])


def joined(items: Any, sep: str = ", ") -> str:
    """Values from the user or a file, each escaped (see the module's docstring)."""
    return sep.join(printable(str(x)) for x in items)


def num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def validated(result: Validated) -> str:
    where = f"; publishes to {joined(result.publish)}" if result.publish else ""
    return (f"{printable(result.config)}: OK (store {printable(result.store)}, "
            f"{result.queue} queue entries{where}; every module it needs is installed)")


def initialised(result: Initialised) -> str:
    return (f"wrote {printable(result.config)}: a starter config (REQUIRED keys marked); edit "
            f"it, then 'incw2v validate {printable(result.config)}'")


def _published(targets: list[str]) -> list[str]:
    return [f"published to {joined(targets)}"] if targets else []


def added(result: AddResult) -> str:
    if not result.applied:
        lines = [f"nothing to do: current version {printable(str(result.current))}, "
                 f"{len(result.skipped)} "
                 "corpora skipped (applied, excluded or rejected)"]
    else:
        lines = [f"applied {len(result.applied)} corpus(es); current version "
                 f"{printable(str(result.current))}"]
    for a in result.applied:
        parent = f" on {printable(a['parent'])}" if a.get("parent") else ""
        lines.append(f"  {printable(a['version'])} {printable(a['kind'])}{parent} "
                     f"({printable(a['name'])}): vocabulary "
                     f"{a['vocab_size']} (+{a['words_added']}); "
                     + printable(quality_line(a.get("scores") or {}, a.get("parent_scores"),
                                              a.get("drift_vs_parent"))))
    if result.pruned:
        lines.append(f"retention: pruned {joined(result.pruned)} (arrays deleted, "
                     "lineage records kept)")
    return "\n".join(lines + _published(result.published))


def status(result: Status) -> str:
    pending = joined(p["name"] for p in result.pending) or "none"
    lines = [f"current: {printable(result.current or 'none')} (vocabulary {result.vocab_size}, "
             f"{result.versions} versions); pending: {pending}"]
    if result.candidates:
        lines.append(f"candidates awaiting review: {joined(result.candidates)}")
    for x in result.excluded:
        held = "; the current version holds it" if x["in_current"] else ""
        why = f" ({printable(x['reason'])})" if x["reason"] else ""
        lines.append(f"excluded: {printable(x['uri'])}{why}, since {printable(x['at'])}{held}")
    if result.pruned:
        lines.append(f"pruned (record only): {joined(result.pruned)}")
    for p in result.problems:
        lines.append(f"problem: the next run would stop: {safe(p['error'])}")
        if p["hint"]:
            lines.append(f"  hint: {printable(p['hint'])}")
    return "\n".join(lines)


def _what(row: VersionRow) -> str:
    if row.added:
        return "+" + joined(row.added)
    # A rebuild adds no corpus: it retrains on all of its parent's.
    return f"all {len(row.corpora)} corpora of {printable(row.parent)}" if row.parent else ""


def history(result: History) -> str:
    rows = {r.version: r for r in result.versions}
    lines = []
    previous: str | None = None
    for r in result.versions:
        parent = f"parent {printable(r.parent)}" if r.parent else "no parent"
        if r.parent and r.parent != previous:
            parent += " (branch)"  # e.g. the first version after a rollback
        state = printable(r.status) + (", pruned" if r.pruned_at else "")
        lines.append(f"{'*' if r.current else ' '} {printable(r.version)}  "
                     f"{printable(r.created_at)}  {printable(r.kind):<7} "
                     f"{state:<9}  {parent}  vocab {r.vocab_size}  {_what(r)}")
        before = rows.get(r.parent or "")
        lines.append("      " + printable(quality_line(r.scores, before.scores if before else None,
                                                        r.drift.get("parent"))))
        for e in r.events:
            detail = f": {printable(e['detail'])}" if e["detail"] else ""
            lines.append(f"      [{printable(e['action'])} {printable(e['at'])}{detail}]")
        previous = r.version
    for x in result.exclusions:
        why = f": {printable(x['reason'])}" if x["reason"] else ""
        lines.append(f"excluded {printable(x['uri'])} since {printable(x['at'])}{why}")
    return "\n".join(lines) or "no versions yet"


def rolled_back(result: Moved) -> str:
    lines = [f"current version is now {printable(result.current)} "
             f"(was {printable(str(result.previous))})"]
    if result.excluded:
        lines.append(f"excluded from the lineage (later runs skip them): "
                     f"{joined(result.excluded)}")
    elif result.rolled_back:
        lines.append(f"pending again (the next add-corpus applies them; --exclude-rolled-back "
                     f"or 'incw2v exclude' keeps them out): {joined(result.rolled_back)}")
    return "\n".join(lines + _published(result.published))


def promoted(result: Moved) -> str:
    return "\n".join([f"current version is now {printable(result.current)} "
                      f"(was {printable(str(result.previous))}); "
                      "override recorded in the lineage", *_published(result.published)])


def excluded(result: Excluded) -> str:
    changed = joined(x["uri"] for x in result.changed) or "nothing new"
    lines = [f"excluded {changed}; {len(result.exclusions)} exclusion(s) in force"]
    if result.in_current:
        lines.append(f"the current version already holds {joined(result.in_current)}: "
                     "roll back to a version before it to take it out of the model")
    return "\n".join(lines)


def unexcluded(result: Excluded) -> str:
    return (f"no longer excluded: {joined(x['uri'] for x in result.changed)}; later runs "
            f"apply them if the queue names them; {len(result.exclusions)} exclusion(s) left")


def published(result: Published) -> str:
    return f"published {printable(str(result.version))} to {joined(result.targets)}"


def rejected(result: Rejected) -> str:
    return (f"rejected {printable(result.version)}; later runs skip "
            f"{joined(result.skipped_from_now_on) or 'nothing'}")


def exported(result: Exported) -> str:
    return (f"exported {printable(result.version)} as {printable(result.format)}: "
            f"{joined(result.files)}")


def pruned(result: Pruned) -> str:
    deleted = joined(result.deleted) or "nothing"
    held = f" ({joined(result.held)} held open by a reader)" if result.held else ""
    return (f"pruned {deleted} (arrays deleted, lineage records kept in the history); "
            f"kept {joined(result.kept)}{held}")


def repaired(result: Repaired) -> str:
    if not result.rebuilt:
        return (f"the manifest is intact ({len(result.versions)} version(s), current "
                f"{printable(str(result.current))}); nothing to repair")
    lines = [f"rebuilt the manifest from {len(result.versions)} version(s): "
             f"{joined(result.versions) or 'none'}; current is now "
             f"{printable(str(result.current))}"]
    if result.candidates:
        lines.append(f"candidates (they failed a gate): {joined(result.candidates)}")
    if result.left_out:
        lines.append(f"left out (meta.json unreadable): {joined(result.left_out)}")
    if result.damaged_manifest:
        lines.append(f"the damaged manifest was kept as {printable(str(result.damaged_manifest))}")
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
            f"{printable(name):<12} {printable(s['kind']):<8} {value:>7}  coverage "
            f"{s['covered']}/{s['total']} "
            f"({100 * s['coverage']:.1f}%){extra}"
        )
    return lines


def evaluated(result: Evaluation) -> str:
    return "\n".join([f"{printable(result.version)} (vocabulary {result.vocab_size})",
                      *scores(result.scores)])


def compared(result: Comparison) -> str:
    return comparison(result.to_dict())


def comparison(info: dict[str, Any]) -> str:
    voc = info["vocab"]
    lines = [f"A = {printable(info['a'])}, B = {printable(info['b'])}", "",
             f"{'metric':<14}{'A':>8}{'B':>8}"]
    for name, s in info["scores"].items():
        lines.append(f"{printable(name):<14}{num(s['a']):>8}{num(s['b']):>8}   coverage "
                     f"{num(s['coverage_a'])} / {num(s['coverage_b'])}")
    lines += [
        "",
        f"vocabulary: A {voc['a']}, B {voc['b']}, shared {voc['shared']}, "
        f"added {voc['added']}, removed {voc['removed']}",
    ]
    if voc.get("added_top"):
        lines.append("  most frequent added: " + joined(voc["added_top"][:10]))
    lines += [
        f"anchors: {printable(str(info['anchors']['source']))} (mean cosine after mapping "
        f"{num(info['anchors']['mean_cosine'])})",
        f"aligned cosine of shared words: median {num(info['cosine']['median'])}, "
        f"p10 {num(info['cosine']['p10'])}  (drift = 1 - median = {num(info['drift'])})",
        f"top-{info['overlap']['k']} neighbour overlap: mean {num(info['overlap']['mean'])} "
        f"on {info['overlap']['words']} sampled words",
        "",
        f"{'band (rank)':<16}{'words':>8}{'cosine':>9}{'overlap':>9}",
    ]
    for band in info["bands"]:
        lines.append(f"{printable(str(band['band'])):<16}{band['words']:>8}{num(band['median_cosine']):>9}"
                     f"{num(band['overlap']):>9}")
    if info.get("moved"):
        lines += ["", "moved most (among the most frequent words):"]
        for m in info["moved"]:
            lines.append(f"  {printable(m['word'])} (rank {m['rank']}, cosine "
                         f"{m['cosine']:.3f}): "
                         f"gained {joined(m['gained'][:5]) or '-'}; "
                         f"lost {joined(m['lost'][:5]) or '-'}")
    return "\n".join(lines)


def rebuilt(result: Rebuilt) -> str:
    info = result.to_dict()
    t = info["timings"]
    head = (f"rebuilt the lineage of {printable(str(info['replaces']))} from scratch as "
            f"{printable(info['version'])} ({printable(info['status'])}, vocabulary "
            f"{info['vocab_size']}, read {t.get('read', 0):.1f}s, "
            f"train {t.get('train', 0):.1f}s)")
    return "\n".join([head, *_published(result.published), "", comparison(info["compare"])])


def reported(result: Reported) -> str:
    return (f"wrote {printable(str(result.output))} ({result.versions} versions, "
            f"{result.plots} plots)")


def align_summary(result: AlignResult) -> str:
    d = result.diagnostics
    h = d["held_out"]
    anchors = d["anchors"]
    lines = []
    if result.command == "align":
        lines.append(
            f"mapped {result.source_vocab} words of {printable(result.source)} into the "
            f"space of {printable(result.target)} ({d['method']}, {anchors['fit']} anchors, "
            f"{anchors['held_out']} held out)"
        )
    else:
        m = result.merge or {}
        lines.append(
            f"merged {printable(result.source)} into {printable(result.target)}: "
            f"{result.vocab_size} words "
            f"({m.get('shared', 0)} shared, {m.get('from_source', 0)} mapped from SOURCE; "
            f"{d['method']}, {anchors['fit']} anchors, {anchors['held_out']} held out)"
        )
    if h["p_at_1_csls"] is not None:
        lines.append(
            f"held-out P@1 {h['p_at_1_cosine']:.3f} cosine / {h['p_at_1_csls']:.3f} CSLS, "
            f"P@10 {h['p_at_10_cosine']:.3f} / {h['p_at_10_csls']:.3f}, "
            f"mean cosine {h['mean_cosine']:.3f} (random pairs {h['mean_cosine_random']:.3f}); "
            f"distortion "
            f"{d['distortion']['mean_abs_cosine_change']:.3f}; verdict: "
            f"{printable(d['verdict'])}"
        )
    if d["warnings"]:  # counted only: they are logged, escaped there
        lines.append(f"{len(d['warnings'])} warning(s), logged above and in the metadata")
    lines.append(f"wrote {printable(str(result.output))} ({printable(result.format)})")
    return "\n".join(lines)
