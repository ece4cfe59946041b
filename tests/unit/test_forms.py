"""The run form's reading of the farm's refusals (api/forms.py)."""

from api.forms import errors_by_field


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
