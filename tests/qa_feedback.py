"""Small FineGrainedRLHF qa_feedback records, made here so tests of the format need no outside data."""

import json

FIRST = "Café 東京 is a café. It opened in 1999 👩‍👩‍👧. It sells tea."
TEA = (FIRST.index("It sells tea."), len(FIRST))
INTRO_END = FIRST.index(" It opened")


def qa_record(**changes) -> dict:
    """A record in the file's shape: four predictions, six preferences, spans on prediction 1."""
    record = {
        "question": "When did Café 東京 open?",
        "passages": [["Café 東京", "Café 東京 opened in 1999."]],
        "gold": "It opened in 1999.",
        "prediction 1": FIRST,
        "prediction 2": "In 1999.",
        "prediction 3": "It opened in 2001.",
        "prediction 4": "Nobody knows.",
        "feedback": {
            "errors": [
                {"error type": "Redundant", "explanation": "", "start": TEA[0], "end": TEA[1]},
                {"error type": "Irrelevant", "explanation": "not asked", "start": 0, "end": INTRO_END},
            ],
            "missing-info": [{"error type": "Missing-Answer", "passage_id": 1, "sentence_id": [1]}],
            "corrected-prediction": "Café 東京 opened in 1999.",
        },
        "preference": [1, 1, 1, 2, 0, 1],
    }
    record.update(changes)
    return record


def qa_file(*records) -> bytes:
    return json.dumps(list(records), ensure_ascii=False).encode()
