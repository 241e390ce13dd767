"""When an alignment is good, fair or poor: thresholds on its held-out anchors.

Kept apart from ``alignment`` (which needs gensim and scipy) so that the CLI can
quote the rule in its help without importing them on every run.
"""

from __future__ import annotations

# Verdict thresholds on the held-out anchors, chosen from the measurements in
# docs/alignment.md (2M-token models): same corpus, other seed scores CSLS P@1 0.99
# with a cosine margin (mean cosine minus the random-pair baseline) of 0.55; two
# disjoint samples of one domain P@1 0.47, margin 0.42; different domains P@1 <= 0.06,
# margin <= 0.13. The raw mean cosine alone says little: small or anisotropic models
# have high cosines between any two words.
GOOD_P1 = 0.75
GOOD_MARGIN = 0.30
POOR_P1 = 0.25
POOR_MARGIN = 0.15


def describe_thresholds() -> str:
    """The verdict rule in one line, for help texts."""
    return (f"good: held-out CSLS P@1 >= {GOOD_P1} and a cosine margin over random pairs "
            f">= {GOOD_MARGIN}; poor: P@1 < {POOR_P1} or a margin < {POOR_MARGIN}")
