"""The pages' reading of the farm's refusals (api/forms.py)."""

import pytest
from pydantic import ValidationError

from api.forms import errors_by_field, problems_of
from api.schemas import ModelCreate


def test_each_sentence_about_an_input_goes_beside_its_field():
    detail = (
        "Invalid request: inputs.words: 99 is greater than the maximum of 10; "
        "inputs.mode: must be one of plain, loud"
    )
    assert errors_by_field(detail) == {
        "words": "99 is greater than the maximum of 10",
        "mode": "must be one of plain, loud",
    }


def test_a_refusal_about_no_input_goes_beside_no_field():
    assert errors_by_field("You have 4 jobs queued or running; wait for one to end.") == {}
    assert errors_by_field("inputs.<script>: x") == {}  # not a name an input can have


def test_a_refused_form_says_each_problem_named_by_its_field():
    with pytest.raises(ValidationError) as refused:
        ModelCreate(name="Bad Name", description="x" * 1001)
    sentence = problems_of(refused.value)
    assert sentence.startswith("name: String should match pattern")
    assert "; description: String should have at most 1000 characters" in sentence
    assert sentence.endswith(".")
