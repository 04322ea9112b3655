import pytest

from app.core.validators import validate_business_id


class TestValidateBusinessId:
    @pytest.mark.parametrize("value", ["3286283-6", "2686898-3", "0737546-2", "1234567-1", " 3286283-6 "])
    def test_valid(self, value):
        assert validate_business_id(value) == value.strip()

    def test_six_digit_form_gets_its_leading_zero(self):
        assert validate_business_id("737546-2") == "0737546-2"

    @pytest.mark.parametrize("value", ["3286283-5", "2686898-4", "3286283", "32862836", "A286283-6", "0000006-0", ""])
    def test_invalid(self, value):
        with pytest.raises(ValueError):
            validate_business_id(value)
