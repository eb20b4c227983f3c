"""The pure search builders (zoho/search.py): list_info and search_criteria as plain dicts, and text matching.

The sandbox's own parser (sandbox/search.py) checks that each built dict is one SDP accepts.
"""

from __future__ import annotations

import json

import pytest

from zoho_gateway.sandbox.search import parse_list_info
from zoho_gateway.zoho import search


def accepted(info: dict[str, object]) -> None:
    """The sandbox (speaking SDP's rules) accepts ``info`` as ``input_data``."""
    parse_list_info(json.dumps({"list_info": info}))


class TestCriteria:
    def test_by_reference_is_one_exact_criterion_on_the_udf(self) -> None:
        assert search.by_reference("udf_sline_1", "ref-42") == [
            {"field": "udf_fields.udf_sline_1", "condition": "is", "value": "ref-42"}
        ]

    @pytest.mark.parametrize("name", ["subject", "udf_fields.udf_sline_1", "udf_sline", "UDF_SLINE_1", "udf_x_1;"])
    def test_a_field_that_is_not_a_udf_name_is_refused(self, name: str) -> None:
        with pytest.raises(ValueError):
            search.udf_field(name)

    @pytest.mark.parametrize("name", ["udf_sline_1", "udf_char1", "udf_long_12"])
    def test_udf_names_as_sdp_spells_them(self, name: str) -> None:
        assert search.udf_field(name) == f"udf_fields.{name}"

    def test_by_content_joins_requester_subject_and_time_with_and(self) -> None:
        assert search.by_content("a@b.co", "Printer", 1000, 2000) == [
            {"field": "requester.email_id", "condition": "is", "value": "a@b.co"},
            {"field": "subject", "condition": "is", "value": "Printer"},
            {"field": "created_time", "condition": "between", "values": ["1000", "2000"]},
        ]

    def test_list_info_writes_and_between_siblings_and_sorts_by_creation(self) -> None:
        info = search.list_info(search.by_content("a@b.co", "s", 1, 2), start_index=101)
        assert info["row_count"] == 100 and info["start_index"] == 101
        assert (info["sort_field"], info["sort_order"]) == ("created_time", "asc")
        operators = [c.get("logical_operator") for c in info["search_criteria"]]
        assert operators == [None, "AND", "AND"]
        accepted(info)

    def test_list_info_without_criteria_has_no_search_criteria(self) -> None:
        info = search.list_info()
        assert "search_criteria" not in info
        accepted(info)

    @pytest.mark.parametrize(("start", "rows"), [(0, 10), (1, 0), (1, 101)])
    def test_list_info_refuses_pages_sdp_would_not_serve(self, start: int, rows: int) -> None:
        with pytest.raises(ValueError):
            search.list_info(start_index=start, row_count=rows)

    def test_client_text_stays_a_json_value(self) -> None:
        # Quotes, braces and operators in a subject cannot end the value or add a criterion.
        hostile = '"}, {"field": "id", "condition": "greater than", "value": "0'
        info = search.list_info(search.by_content("a@b.co", hostile, 1, 2))
        decoded = json.loads(json.dumps({"list_info": info}))
        assert decoded["list_info"]["search_criteria"][1]["value"] == hostile
        assert len(decoded["list_info"]["search_criteria"]) == 3
        accepted(info)

    def test_any_of_nests_the_or_group_as_children(self) -> None:
        group = search.any_of(
            [search.criterion("subject", "contains", "x"), search.criterion("description", "contains", "x")]
        )
        assert group == {
            "field": "subject",
            "condition": "contains",
            "value": "x",
            "children": [{"field": "description", "condition": "contains", "value": "x", "logical_operator": "OR"}],
        }
        with pytest.raises(ValueError):
            search.any_of([])

    def test_for_listing_leaves_out_absent_filters(self) -> None:
        assert search.for_listing() == []
        criteria = search.for_listing(requester_email="a@b.co", status="Open", text="vpn")
        assert [c["field"] for c in criteria] == ["requester.email_id", "status.name", "subject"]
        assert criteria[2]["children"][0]["field"] == "description"
        accepted(search.list_info(criteria))


class TestSameText:
    @pytest.mark.parametrize(
        "stored",
        [
            "Printer on fire\nplease help",
            "<div>Printer on fire<br>please help</div>",
            "<p>Printer on fire</p>\n<p>please help</p>",
            "Printer&nbsp;on fire<br/>please help",
            "  Printer on fire   please help ",
        ],
    )
    def test_plain_text_matches_its_html_and_whitespace_forms(self, stored: str) -> None:
        assert search.same_text("Printer on fire\nplease help", stored)

    def test_escaped_angle_brackets_stay_text(self) -> None:
        sent = "if a < b and c > d"
        assert search.same_text(sent, "<div>if a &lt; b and c &gt; d</div>")
        assert search.same_text(sent, sent)

    def test_markup_sent_as_text_matches_when_stored_escaped_or_as_is(self) -> None:
        sent = "<b>bold</b> claim"
        assert search.same_text(sent, "<div>&lt;b&gt;bold&lt;/b&gt; claim</div>")
        assert search.same_text(sent, sent)

    @pytest.mark.parametrize("stored", ["Printer on fire", "Printer on fire please help!", "", "<div></div>"])
    def test_other_text_does_not_match(self, stored: str) -> None:
        assert not search.same_text("Printer on fire\nplease help", stored)
