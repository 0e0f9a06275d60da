"""Labelling through the real services, as an annotator who always prefers the correct answer."""

from annotate.services.assignments import assignment_next
from annotate.services.feedback import annotation_submit


def label_preferring_first_response(study, annotator, limit: int | None = None) -> int:
    """Answer queries until none are left, always choosing the query's first (canonical) response.

    make_items puts the correct sum first, so the labels carry a learnable signal.
    """
    done = 0
    while limit is None or done < limit:
        assignment = assignment_next(study=study, annotator=annotator)
        if assignment is None:
            break
        shown = "a" if assignment.display_order[0] == 0 else "b"
        answer = {"choice": shown, "strength": 2}
        annotation_submit(query=assignment.query, annotator=annotator, client_key=f"lab-{assignment.pk}", answer=answer)
        done += 1
    return done
