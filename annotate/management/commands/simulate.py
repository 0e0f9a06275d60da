"""`manage.py simulate <study>`: the full label-efficiency simulator (annotate/services/simulation.py)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from annotate.cli.commands import parse_setting
from annotate.errors import PreflabError
from annotate.management.commands._study import find_study
from annotate.models import ModelVersion, Prompt, Study
from annotate.services import simulation
from annotate.services.studies import study_delete

DEFAULT_TRAINING = {"epochs": 1, "max_length": 128, "batch_size": 8, "min_pairs": 4}
LABEL_FORMATS = ("fgrlhf", "trl")


class Command(BaseCommand):
    help = (
        "Run the round loop with simulated annotators for each strategy and seed, on fresh copies of the study's pairs; "
        "write labels vs held-out accuracy and log-likelihood as CSV and PNG."
    )

    def add_arguments(self, parser):
        parser.add_argument("study", help="study id or exact name: its pairs, reward model and training config")
        parser.add_argument("--strategies", default="random,uncertainty,d_optimal", help="comma-separated")
        parser.add_argument("--seeds", type=int, default=3)
        parser.add_argument("--rounds", type=int, default=5)
        parser.add_argument("--round-size", type=int, default=None, help="queries per round (default: the study's)")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a training config value")
        parser.add_argument("--labels", type=Path, help="held-out labels for the study's prompts (default: its own labels)")
        parser.add_argument("--format", choices=LABEL_FORMATS, default="trl", help="format of --labels")
        parser.add_argument("--gold", help="a gold reward model: a model version id or an artifact path")
        parser.add_argument("--temperature", type=float, default=1.0, help="gold labels: Bernoulli(σ(Δ/τ))")
        parser.add_argument("--flip", type=float, default=0.0, help="gold labels: flipped with this probability")
        parser.add_argument("--out", type=Path, default=Path("simulation"), help="folder for simulation.csv and .png")
        parser.add_argument("--keep", action="store_true", help="keep the copy studies (to look at their rounds)")

    def handle(self, *args, **options):
        from learning.select import STRATEGIES

        study = find_study(options["study"])
        strategies = [s.strip() for s in options["strategies"].split(",") if s.strip()]
        unknown = [s for s in strategies if s not in STRATEGIES]
        if unknown or not strategies:
            raise CommandError(f"Unknown strategy {unknown[0] if unknown else ''!r}; use some of {', '.join(STRATEGIES)}.")
        for name in ("seeds", "rounds"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1, not {options[name]}.")
        if options["labels"] is not None and options["gold"] is not None:
            raise CommandError("Give --labels or --gold, not both.")
        try:
            config = {**DEFAULT_TRAINING, **study.training_config, **dict(parse_setting(s) for s in options["set"])}
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        hidden = None
        try:
            if options["labels"] is not None:
                hidden = self.import_labels(study, options["labels"], options["format"])
            source = hidden or study
            pairs = simulation.source_pairs(source, split_of=study)
            truth = self.truth(source, pairs, options)
            with tqdm(total=len(strategies) * options["seeds"], unit="run") as bar:

                def progress(what: str, labels: int) -> None:
                    bar.set_postfix_str(f"{what}: {labels} labels")
                    bar.update(1)

                curves = simulation.study_simulate(
                    source=source,
                    truth=truth,
                    pairs=pairs,
                    strategies=strategies,
                    seeds=range(options["seeds"]),
                    rounds=options["rounds"],
                    round_size=options["round_size"] or study.round_size,
                    training_config=config,
                    keep=options["keep"],
                    progress=progress,
                )
        except PreflabError as exc:
            raise CommandError(exc.message) from None
        finally:
            if hidden is not None:
                study_delete(study=hidden)  # a labels file may hold more rows than Django's delete can list
        self.write(curves, options["out"], study, "gold model" if options["gold"] else "held-out labels")

    @staticmethod
    def import_labels(study: Study, path: Path, format: str) -> Study:
        """The labels file imported into a hidden study (deleted afterwards); its prompts must be the study's."""
        from annotate.services.importers import study_file_import
        from annotate.services.studies import study_create

        if not path.is_file():
            raise CommandError(f"No labels file {str(path)!r}.")
        with transaction.atomic():
            hidden = study_create(
                creator=study.created_by, name=f"{study.name} · simulation labels", reward_model=study.reward_model
            )
            study_file_import(study=hidden, format=format, file=path.read_bytes())
        ours = set(Prompt.objects.filter(study=study).values_list("external_id", flat=True))
        theirs = Prompt.objects.filter(study=hidden).values_list("external_id", flat=True)
        foreign = sorted(set(theirs) - ours)
        if foreign:
            study_delete(study=hidden)
            raise CommandError(
                f"{len(foreign)} prompt(s) of {path.name} are not prompts of study {study.name!r} (by id), e.g. {foreign[0]!r}."
            )
        return hidden

    @staticmethod
    def truth(source: Study, pairs: list, options: dict) -> simulation.Truth:
        if options["gold"] is None:
            return simulation.Truth(labels=simulation.stored_labels(source, pairs))
        if not options["temperature"] > 0 or not 0 <= options["flip"] < 0.5:
            raise CommandError("--temperature must be above 0 and --flip in [0, 0.5).")
        gold = options["gold"]
        version = ModelVersion.objects.filter(pk=int(gold)).first() if gold.isdigit() else None
        if version is None and not Path(gold).is_dir():
            raise CommandError(f"--gold {gold!r} is neither a model version id nor a model folder.")
        margins = simulation.gold_margins(version or gold, pairs)
        return simulation.Truth(margins=margins, temperature=options["temperature"], flip=options["flip"])

    def write(self, curves: list, out: Path, study: Study, source: str) -> None:
        from learning.simulate import plot, summarise, write_csv

        out.mkdir(parents=True, exist_ok=True)
        rows = summarise(curves)
        write_csv(rows, out / "simulation.csv")
        plot(rows, out / "simulation.png", title=f"{study.name}: simulated annotators ({source})")
        for row in rows:
            self.stdout.write(
                f"{row.strategy:>18} {row.labels:>6} labels  accuracy {row.accuracy:.3f}  ll {row.log_likelihood:.3f}"
            )
        self.stdout.write(self.style.SUCCESS(f"Wrote {out / 'simulation.csv'} and {out / 'simulation.png'}"))
