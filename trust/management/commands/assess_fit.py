"""Score (community, product) cases from a JSONL file with the production scoring code.

    python manage.py assess_fit --input CASES.jsonl --output RESULTS.jsonl

Each case is scored by ``trust.services.fit_result`` with the lexicon from the
database, exactly as the admin, the owner API and the re-scoring job do.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from trust.lexicon_store import current_lexicon
from trust.scoring.engine import evidence_from_case, product_from_case
from trust.services import fit_result


class Command(BaseCommand):
    help = "Assess the fit of products to communities given as JSON lines (see docs/scorer.md)."

    def add_arguments(self, parser):
        parser.add_argument("--input", required=True, help="JSONL with {id, community, product} per line")
        parser.add_argument("--output", required=True, help="JSONL to write {id, audience_match, ...} to")
        parser.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of the reasons")

    def handle(self, *args, **options):
        lexicon = current_lexicon()
        count = 0
        try:
            source = open(options["input"], encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CommandError(f"Cannot read {options['input']}: {exc}") from exc
        with source, open(options["output"], "w", encoding="utf-8") as sink:
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    case = json.loads(line)
                    evidence = evidence_from_case(case["community"])
                    product = product_from_case(case["product"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise CommandError(f"Line {number} is not a valid case: {exc}") from exc
                result = fit_result(evidence=evidence, product=product, lexicon=lexicon)
                row = {
                    "id": case.get("id"),
                    "audience_match": round(result.audience_match, 4),
                    "trust": round(result.trust, 4),
                    "score": round(result.score, 4),
                    "level": result.level,
                    "warning": result.warning,
                    "reasons": list(result.reasons_en if options["lang"] == "en" else result.reasons_zh),
                }
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Assessed {count} cases into {options['output']}."))
