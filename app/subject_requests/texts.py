"""Fixed wording of the access letter and of answers to the person, in Finnish and English."""

from __future__ import annotations

from typing import Any

CONFIRMATION: dict[str, dict[str, str]] = {
    "fi": {"subject": "Vahvista tietosuojapyyntösi",
           "text": ("Hei,\n\nsaimme pyynnön, joka koskee rekisterissä {register} olevia tietojasi. Jos pyyntö "
                    "on sinun, vahvista se avaamalla linkki ja painamalla Vahvista:\n\n{link}\n\nLinkki toimii "
                    "kerran ja vanhenee {expires}. Jos et tehnyt pyyntöä, voit jättää viestin huomiotta.\n"),
           "sms": "Vahvista tietosuojapyyntösi ({register}): {link} (voimassa {expires} asti)"},
    "en": {"subject": "Confirm your data protection request",
           "text": ("Hello,\n\nwe received a request about your data in the register {register}. If the request "
                    "is yours, confirm it by opening the link and pressing Confirm:\n\n{link}\n\nThe link works "
                    "once and expires on {expires}. If you did not make the request, you can ignore this message.\n"),
           "sms": "Confirm your data protection request ({register}): {link} (valid until {expires})"},
    "sv": {"subject": "Bekräfta din dataskyddsbegäran",
           "text": ("Hej,\n\nvi har tagit emot en begäran om dina uppgifter i registret {register}. Om begäran är "
                    "din, bekräfta den genom att öppna länken och trycka på Bekräfta:\n\n{link}\n\nLänken fungerar "
                    "en gång och upphör {expires}. Om du inte gjorde begäran kan du bortse från meddelandet.\n"),
           "sms": "Bekräfta din dataskyddsbegäran ({register}): {link} (giltig till {expires})"},
}

CONFIRM_PAGE = """<!DOCTYPE html>
<html lang="fi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vahvista pyyntö · Confirm the request · Bekräfta begäran</title></head>
<body><main>
<p>Vahvista, että tietosuojapyyntö on sinun. · Confirm that the data protection request is yours. ·
Bekräfta att dataskyddsbegäran är din.</p>
<form method="post" action=""><button type="submit">Vahvista · Confirm · Bekräfta</button></form>
</main></body></html>
"""

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
