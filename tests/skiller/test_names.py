"""Names users type find the canonical ones, whatever the case or separators; a miss names close matches."""
from __future__ import annotations

import pytest

from skiller.names import UnknownName, canonical_domains, fold, resolve, resolve_fusion

DOMAINS = ["Hospital", "HealthInsurance", "Pharmacy", "Hotel"]


@pytest.mark.parametrize("typed", ["hospital", "HOSPITAL", "Hospital", "hos-pital"])
def test_case_and_separators_do_not_matter(typed):
    assert resolve(typed, DOMAINS) == "Hospital"


def test_snake_case_finds_the_pascal_case_name():
    assert fold("health_insurance") == fold("Health Insurance") == fold("HealthInsurance")
    assert resolve("health_insurance", DOMAINS) == "HealthInsurance"


def test_a_miss_is_one_line_listing_close_matches():
    with pytest.raises(UnknownName) as caught:
        resolve("hospitl", DOMAINS)
    message = str(caught.value)
    assert "\n" not in message and "'hospitl'" in message and "Hospital" in message and "Pharmacy" not in message


def test_a_miss_without_close_matches_lists_what_is_known():
    with pytest.raises(UnknownName, match="known: HealthInsurance, Hospital, Hotel, Pharmacy"):
        resolve("Zebra", DOMAINS)


def test_fusion_members_match_in_any_order_and_spelling():
    fusions = {"fusion:Hospital+HealthInsurance": ["Hospital", "HealthInsurance"]}
    for spec in ("Hospital+HealthInsurance", "HealthInsurance+Hospital", "health_insurance+hospital",
                 "HealthInsurance_Hospital"):
        assert resolve_fusion(spec, fusions, DOMAINS) == "fusion:Hospital+HealthInsurance"
    with pytest.raises(UnknownName, match="no fusion of Hospital \\+ Pharmacy.*Hospital\\+HealthInsurance"):
        resolve_fusion("Pharmacy+Hospital", fusions, DOMAINS)
    with pytest.raises(UnknownName, match="did you mean Hospital"):
        resolve_fusion("Hospitle+Pharmacy", fusions, DOMAINS)


def test_config_domains_are_catalog_names_on_the_builtin_provider():
    assert canonical_domains(["hospital", "PHARMACY", "Hospital"], "builtin") == ["Hospital", "Pharmacy"]
    with pytest.raises(UnknownName, match="did you mean Hospital"):
        canonical_domains(["Hospitle"], "builtin")
    with pytest.raises(UnknownName):
        canonical_domains(["SolarInstallers"], "builtin")  # not in the catalog: the builtin cannot make it


def test_a_model_may_invent_a_pascal_case_domain():
    assert canonical_domains(["hospital", "SolarInstallers"], "anthropic") == ["Hospital", "SolarInstallers"]
    with pytest.raises(UnknownName, match="PascalCase"):
        canonical_domains(["solar installers"], "anthropic")
