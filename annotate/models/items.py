from django.db import models
from django.db.models.functions import Coalesce

from annotate.models.studies import Study
from annotate.rows import Columns, fetch_all


class Prompt(models.Model):
    """A conversation to respond to, as chat messages [{"role", "content"}, ...]."""

    # No index of its own on the foreign keys below that lead a unique constraint: that constraint's
    # index serves their lookups, and each index costs every import a write per row.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prompts", db_index=False)
    external_id = models.CharField(max_length=200, help_text="The id given at import; re-importing it is a no-op.")
    messages = models.JSONField()
    metadata = models.JSONField(default=dict, blank=True)
    # "train" or "eval": the study's fixed evaluation split, given once by services.splits and
    # never changed; "" until the first training run of the study reads its labels.
    split = models.CharField(max_length=16, default="", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["study", "external_id"], name="prompt_unique_external_id")]

    def __str__(self) -> str:
        return f"prompt {self.external_id}"


class Response(models.Model):
    """One candidate answer to a prompt, and where it came from."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses", db_index=False)  # see Prompt.study
    index = models.PositiveSmallIntegerField(help_text="Position in the imported list.")
    text = models.TextField()
    source = models.CharField(max_length=300, blank=True, help_text="The model or version that produced it.")
    sampling = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["prompt_id", "index"]
        constraints = [models.UniqueConstraint(fields=["prompt", "index"], name="response_unique_index")]

    def __str__(self) -> str:
        return f"response {self.index} to {self.prompt_id}"


class QueryKind(models.TextChoices):
    """How a query shows a prompt's responses. A study's feedback_kinds name it (pairwise, ranking,
    or single, which may be left out); the settings page offers these labels; the API reports a
    query's kind in these values."""

    PAIRWISE = "pairwise", "Pairwise"
    RANKING = "ranking", "Ranking"
    SINGLE = "single", "One response at a time"


class Query(models.Model):
    """What an annotator is asked: a prompt and 2..K of its responses in a canonical order."""

    # No index of its own: the pool index starts with the study, in claim order, and a second
    # index on the study alone let stale statistics choose "all the study's queries, then sort".
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="queries", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="queries")
    kind = models.CharField(max_length=16, choices=QueryKind.choices, default=QueryKind.PAIRWISE)
    key = models.CharField(max_length=200, help_text="Kind plus response ids; makes creation idempotent.")
    asks = models.JSONField(default=list, help_text="The feedback kinds an answer must give, e.g. [pairwise, critique].")
    # The round whose claim serves it (services.assignments): the round that chose it, unless a
    # review rejection after that round moved it into a later one to be answered again; then
    # `chosen_round` keeps the round that chose it, which exports report (`CHOSEN_ROUND`).
    round = models.PositiveIntegerField(default=0)
    chosen_round = models.PositiveIntegerField(
        null=True, blank=True, help_text="The round that chose it, once a rejection moved it on; null: `round`."
    )
    strategy = models.CharField(max_length=32, default="import")  # the strategy that chose it; a move keeps it
    score = models.FloatField(null=True, blank=True)
    priority = models.IntegerField(default=0)
    label_count = models.PositiveIntegerField(
        default=0, help_text="Annotations stored; kept with the annotation in one transaction."
    )
    # A gold query has a known answer (services.gold): served to every annotator at the study's
    # gold rate, outside rounds and overlap, and never exported or trained on.
    is_gold = models.BooleanField(default=False)
    gold_answer = models.JSONField(null=True, blank=True, help_text="The expected answer, in query positions.")
    created_at = models.DateTimeField(auto_now_add=True)
    responses = models.ManyToManyField(Response, through="QueryResponse", related_name="queries")

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "queries"
        constraints = [models.UniqueConstraint(fields=["study", "key"], name="query_unique_key")]
        indexes = [
            models.Index(fields=["study", "label_count", "-priority", "id"], name="query_pool_idx"),
            # A round's queries: the claim in a round loop, and the check whether a round is complete.
            models.Index(fields=["study", "round", "label_count"], name="query_round_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} query {self.pk}"

    @property
    def round_chosen_in(self) -> int:
        """The round that chose the query, wherever it is served now (exports report this one)."""
        return self.round if self.chosen_round is None else self.chosen_round

    def ordered_responses(self) -> list[Response]:
        """The responses in canonical position order; fetched once per instance."""
        if not hasattr(self, "_ordered_responses"):
            # Written out: every claim and every workspace panel needs it (see annotate/rows.py).
            responses = RESPONSE_COLUMNS
            rows = fetch_all(
                f"SELECT {responses.sql} FROM annotate_queryresponse qr JOIN annotate_response r ON r.id = qr.response_id "
                "WHERE qr.query_id = %s ORDER BY qr.position",
                [self.pk],
            )
            self._ordered_responses = [responses.load(row) for row in rows]
        return self._ordered_responses


class QueryResponse(models.Model):
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="query_responses", db_index=False)  # see Prompt.study
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["query_id", "position"]
        constraints = [models.UniqueConstraint(fields=["query", "position"], name="query_response_unique_position")]

    def __str__(self) -> str:
        return f"response {self.response_id} at {self.position} in query {self.query_id}"


# `Query.round_chosen_in` in a queryset: filter and group exports by the round that chose a query.
CHOSEN_ROUND = Coalesce("chosen_round", "round")

# Each model's columns for the annotation loop's written-out statements, under the alias they use.
PROMPT_COLUMNS = Columns(Prompt, "p")
RESPONSE_COLUMNS = Columns(Response, "r")
QUERY_COLUMNS = Columns(Query, "q")
