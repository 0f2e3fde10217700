"""Gradescope's results.json: every test, the score, and in extra_data what grader/store.py reads back."""

import json

from grader.render.common import number, summary
from grader.results import FAILED, PASSED

BONUS_TAG = "bonus"  # the second tag of a bonus test in results.json: its points come on top of max_score
# Gradescope results.json: tests are shown to students; what the grader process itself printed is not.
GRADESCOPE_VISIBILITY = "visible"
GRADESCOPE_STDOUT_VISIBILITY = "hidden"


def to_dict(results):
    """Return the Gradescope results.json object (what to_json serialises)."""
    return {
        "score": number(results.score),
        "max_score": number(results.max_score),
        "execution_time": number(round(results.execution_time, 3)),
        "output": summary(results),
        "visibility": GRADESCOPE_VISIBILITY,
        "stdout_visibility": GRADESCOPE_STDOUT_VISIBILITY,
        # Gradescope stores extra_data without showing it; grader.store.from_json rebuilds the rest from it.
        "extra_data": {
            "submission": results.submission,
            "status": results.status,
            "notes": [str(note) for note in results.notes],
            "sandbox": list(results.sandbox),
            "probe_output": results.probe_output,
            "artifacts": {str(k): str(v) for k, v in results.artifacts.items()},
        },
        "tests": [
            {
                "name": test.name,
                "score": number(test.score),
                "max_score": number(test.max_score),
                "status": PASSED if test.status == PASSED else FAILED,
                "output": test.output,
                "tags": [test.part] + [BONUS_TAG] * test.bonus,
                "visibility": test.visibility,
                **({"extra_data": {"seconds": round(test.seconds, 3)}} if test.seconds is not None else {}),
            }
            for test in results.tests
        ],
    }


def to_json(results, indent=2):
    """Render Gradescope's results.json."""
    return json.dumps(to_dict(results), indent=indent, ensure_ascii=False) + "\n"
