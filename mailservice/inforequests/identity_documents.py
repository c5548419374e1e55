"""The documents an identity may be checked by in person (a module of its own: `requests identity-check` names them
in its help, and the CLI's start does not import :mod:`mailservice.inforequests.identity` and the models for it)."""

# Documents an identity may be checked by (Russian names shown to staff). Only the type is recorded.
DOCUMENTS: dict[str, str] = {
    "passport_rf": "паспорт гражданина Российской Федерации",
    "temporary_id": "временное удостоверение личности гражданина РФ (форма № 2П)",
    "passport_rf_abroad": "заграничный паспорт гражданина Российской Федерации",
    "military_id": "военный билет",
    "serviceman_id": "удостоверение личности военнослужащего",
    "foreign_passport": "паспорт иностранного гражданина",
    "residence_permit": "вид на жительство в Российской Федерации",
    "refugee_id": "удостоверение беженца",
}
