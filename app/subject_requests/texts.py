"""Fixed wording of the access letter and of answers to the person, in Finnish and English."""

from __future__ import annotations

from typing import Any

TEXTS: dict[str, Any] = {
    "sections": {
        "relationship_records": {"fi": "Asiakassuhteen tiedot", "en": "Customer relationship records"},
        "consent_events": {"fi": "Suostumukset ja kiellot", "en": "Consents and objections"},
        "consent_state": {"fi": "Suostumusten ja kieltojen nykytila", "en": "Current consents and objections"},
        "requests": {"fi": "Tietosuojapyynnöt", "en": "Data protection requests"},
    },
    "automated_decision_making": {
        "fi": "Tietoja ei käytetä automaattiseen päätöksentekoon eikä profilointiin, jolla olisi oikeusvaikutuksia.",
        "en": "The data is not used for automated decision-making or profiling with legal or similar effects.",
    },
    "complaint": {
        "fi": ("Sinulla on oikeus tehdä valitus valvontaviranomaiselle, Suomessa tietosuojavaltuutetun "
               "toimistolle (tietosuoja.fi, PL 800, 00531 Helsinki), ja hakea muutosta tuomioistuimelta."),
        "en": ("You have the right to lodge a complaint with the supervisory authority, in Finland the Office of "
               "the Data Protection Ombudsman (tietosuoja.fi, P.O. Box 800, 00531 Helsinki), and to seek a "
               "judicial remedy."),
    },
    "fi": {
        "title": "Vastaus tarkastuspyyntöön",
        "intro": "Alla ovat kaikki tiedot, joita rekisterissä on sinusta, sekä EU:n tietosuoja-asetuksen 15 artiklan "
                 "mukaiset tiedot käsittelystä.",
        "request": "Pyyntö",
        "generated": "Koottu",
        "digest": "Tiedoston tarkiste (SHA-256)",
        "you": "Tietosi",
        "none": "Ei tietoja.",
        "information": "Tietoja käsittelystä",
        "controller": "Rekisterinpitäjä",
        "purposes": "Käsittelyn tarkoitukset",
        "categories": "Tietoryhmät ja säilytysajat",
        "recipients": "Vastaanottajat ja käsittelijät",
        "third_country": "EU/ETA-alueen ulkopuolella, suojatoimi",
        "sources": "Tietolähteet",
        "rights": "Oikeutesi",
        "automated": "Automaattinen päätöksenteko",
        "fields": {"kind": "Tyyppi", "given_name": "Etunimi", "family_name": "Sukunimi", "name": "Nimi",
                   "business_id": "Y-tunnus", "date_of_birth": "Syntymäaika", "guardian": "Huoltaja",
                   "contact_persons": "Yhteyshenkilöt", "email": "Sähköposti", "phone": "Puhelin",
                   "address": "Osoite", "language": "Kieli", "status": "Tila", "created_at": "Luotu",
                   "updated_at": "Muutettu", "external_refs": "Tunnisteet muissa järjestelmissä",
                   "customer_types": "Asiakastyypit", "id": "Tunniste"},
    },
    "en": {
        "title": "Answer to your access request",
        "intro": "Below is all the data the register holds about you, and the information on its processing "
                 "required by Article 15 of the EU General Data Protection Regulation.",
        "request": "Request",
        "generated": "Compiled",
        "digest": "Checksum of the file (SHA-256)",
        "you": "Your data",
        "none": "No data.",
        "information": "About the processing",
        "controller": "Controller",
        "purposes": "Purposes of the processing",
        "categories": "Categories of data and retention",
        "recipients": "Recipients and processors",
        "third_country": "outside the EU/EEA, safeguard",
        "sources": "Sources",
        "rights": "Your rights",
        "automated": "Automated decision-making",
        "fields": {"kind": "Kind", "given_name": "Given name", "family_name": "Family name", "name": "Name",
                   "business_id": "Business ID", "date_of_birth": "Date of birth", "guardian": "Guardian",
                   "contact_persons": "Contact persons", "email": "Email", "phone": "Phone", "address": "Address",
                   "language": "Language", "status": "Status", "created_at": "Created", "updated_at": "Updated",
                   "external_refs": "References in other systems", "customer_types": "Customer types",
                   "id": "Identifier"},
    },
}
