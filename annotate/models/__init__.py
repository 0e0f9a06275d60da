from annotate.models.assignments import Assignment
from annotate.models.exports import DatasetExport
from annotate.models.feedback import Annotation, CritiquePart, PairwiseChoice, RankingPart, RatingPart, SpanPart
from annotate.models.items import Prompt, Query, QueryResponse, Response
from annotate.models.reviews import Review, Verdict
from annotate.models.rounds import Round
from annotate.models.studies import Membership, Study
from annotate.models.training import ModelVersion, TrainingRun

__all__ = [
    "Annotation",
    "Assignment",
    "CritiquePart",
    "DatasetExport",
    "Membership",
    "ModelVersion",
    "PairwiseChoice",
    "Prompt",
    "Query",
    "QueryResponse",
    "RankingPart",
    "RatingPart",
    "Response",
    "Review",
    "Round",
    "SpanPart",
    "Study",
    "TrainingRun",
    "Verdict",
]
