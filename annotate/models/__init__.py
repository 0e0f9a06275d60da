from annotate.models.assignments import Assignment
from annotate.models.feedback import Annotation, PairwiseChoice
from annotate.models.items import Prompt, Query, QueryResponse, Response
from annotate.models.studies import Membership, Study
from annotate.models.training import ModelVersion, TrainingRun

__all__ = [
    "Annotation",
    "Assignment",
    "Membership",
    "ModelVersion",
    "PairwiseChoice",
    "Prompt",
    "Query",
    "QueryResponse",
    "Response",
    "Study",
    "TrainingRun",
]
