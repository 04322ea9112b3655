"""The fixed wording of the privacy statement, in Finnish and English; the profile fills in the facts."""

from __future__ import annotations

from typing import Any

TEXTS: dict[str, dict[str, Any]] = {
    "fi": {
        "title": "Tietosuojaseloste",
        "law": ("Tämä tietosuojaseloste on EU:n yleisen tietosuoja-asetuksen (EU) 2016/679 13 ja 14 artiklan "
                "mukainen informaatio rekisteröidyille, ja sitä täydentää tietosuojalaki (1050/2018)."),
        "updated": "Seloste on päivitetty {date} (versio {version}).",
        "headings": {
            "controller": "Rekisterinpitäjä",
            "contact": "Yhteyshenkilö rekisteriä koskevissa asioissa",
            "register": "Rekisterin nimi",
            "purposes": "Henkilötietojen käsittelyn tarkoitukset ja oikeusperusteet",
            "categories": "Rekisteröidyt ja rekisterin sisältämät tiedot",
            "sources": "Säännönmukaiset tietolähteet",
            "disclosures": "Tietojen luovutukset ja käsittelijät",
            "transfers": "Tietojen siirto EU:n tai ETA:n ulkopuolelle",
            "security": "Rekisterin suojauksen periaatteet",
            "retention": "Tietojen säilytysaika",
            "rights": "Rekisteröidyn oikeudet",
            "cookies": "Evästeet",
        },
        "business_id": "Y-tunnus",
        "also_known_as": "Toiminimet",
        "phone": "Puhelin",
        "email": "Sähköposti",
        "website": "Verkkosivut",
        "bases": {
            "consent": "suostumus (tietosuoja-asetuksen 6 artiklan 1 kohdan a alakohta)",
            "contract": "sopimus tai asiakassuhde (6 artiklan 1 kohdan b alakohta)",
            "legitimate_interest": "rekisterinpitäjän oikeutettu etu (6 artiklan 1 kohdan f alakohta)",
            "legal_obligation": "lakisääteinen velvoite (6 artiklan 1 kohdan c alakohta)",
        },
        "basis": "Peruste",
        "channels_label": "Yhteydenottokanavat",
        "channels": {"email": "sähköposti", "sms": "tekstiviesti", "phone": "puhelin", "post": "kirje"},
        "objectable": "Tämän käsittelyn saa kieltää milloin tahansa.",
        "withdrawable": ("Suostumuksen voi peruuttaa milloin tahansa yhtä helposti kuin sen antoi "
                         "(tietosuoja-asetuksen 7 artiklan 3 kohta)."),
        "marketing": {
            "consent": ("Henkilöille markkinoidaan kanavilla {channels} vain heidän ennalta antamallaan suostumuksella "
                        "(laki sähköisen viestinnän palveluista 917/2014, 200 §)."),
            "soft_opt_in": ("Asiakkaalle, jonka yhteystiedot saatiin myynnin yhteydessä, markkinoidaan kanavilla "
                            "{channels} omia vastaavia tuotteita ja palveluja ilman erillistä suostumusta, kun "
                            "markkinoinnin sai kieltää tietoja kerättäessä ja sen voi kieltää jokaisessa viestissä "
                            "(200 § 2 momentti)."),
            "unless_refused": "Markkinointi kanavilla {channels} on sallittua, kunnes sen kieltää (200 § 3 momentti).",
            "business": "Yritysten ja yhteisöjen osoitteisiin markkinoidaan, kunnes ne kieltävät sen (201 §).",
            "children": "Alle {age}-vuotiaalle markkinoidaan vain huoltajan antamalla suostumuksella.",
            "refuse": ("Markkinoinnin voi kieltää jokaisen viestin linkistä yhdellä napsautuksella tai ilmoittamalla "
                       "rekisterinpitäjälle; kielto on ehdoton (tietosuoja-asetuksen 21 artiklan 2 ja 3 kohta, "
                       "917/2014 202 §)."),
        },
        "retired": "Käsittely on päättynyt; uusia suostumuksia ei kerätä.",
        "data_subjects": "Rekisteröityjen ryhmät",
        "no_disclosures": "Tietoja ei luovuteta eikä käsitellä rekisterinpitäjän ulkopuolella.",
        "roles": {"processor": "henkilötietojen käsittelijä", "recipient": "vastaanottaja",
                  "internal": "rekisterinpitäjän sisäinen käyttö"},
        "location": "sijainti",
        "no_transfers": "Tietoja ei siirretä EU:n tai ETA:n ulkopuolelle.",
        "safeguards": {
            "adequacy_decision": "Euroopan komission tietosuojan riittävyyttä koskeva päätös (45 artikla)",
            "eu_us_data_privacy_framework": ("EU:n ja Yhdysvaltojen välinen tietosuojakehys (EU–US Data Privacy "
                                             "Framework, komission riittävyyspäätös 10.7.2023)"),
            "standard_contractual_clauses": "Euroopan komission hyväksymät vakiosopimuslausekkeet (46 artikla)",
            "binding_corporate_rules": "yritystä koskevat sitovat säännöt (47 artikla)",
            "art49_derogation": "erityistilanteita koskeva poikkeus (49 artikla)",
        },
        "safeguard": "suojatoimi",
        "statute": "peruste",
        "minimum": "vähintään",
        "units": {"years": ("vuosi", "vuotta"), "months": ("kuukausi", "kuukautta"),
                  "weeks": ("viikko", "viikkoa"), "days": ("päivä", "päivää"), "hours": ("tunti", "tuntia")},
        "rights": {
            "access": ("Tarkastusoikeus (15 artikla): rekisteröidyllä on oikeus saada tietää, käsitelläänkö häntä "
                       "koskevia henkilötietoja, ja saada jäljennös tiedoista."),
            "fee": ("Ensimmäinen jäljennös tiedoista on aina maksuton. Kohtuullisen, hallinnollisiin kustannuksiin "
                    "perustuvan maksun voi periä vain pyytämistäsi lisäjäljennöksistä (15 artiklan 3 kohta) tai "
                    "selvästi perusteettomasta tai kohtuuttomasta pyynnöstä (12 artiklan 5 kohta); silloin perustelut "
                    "kirjataan ja sinulle kerrotaan oikeudestasi tehdä valitus. Pyynnön toistaminen ei yksin ole "
                    "syy periä maksua."),
            "rectification": ("Oikeus tietojen oikaisemiseen (16 artikla): virheelliset ja puutteelliset tiedot "
                              "korjataan pyynnöstä. Pyynnössä on yksilöitävä virheelliset tiedot ja oikeat tiedot."),
            "erasure": ("Oikeus tietojen poistamiseen (17 artikla): tiedot poistetaan pyynnöstä, ellei niiden "
                        "säilyttämiselle ole lakisääteistä perustetta (esimerkiksi kirjanpitolaki)."),
            "restriction": "Oikeus käsittelyn rajoittamiseen (18 artikla).",
            "portability": ("Oikeus siirtää tiedot järjestelmästä toiseen (20 artikla) niiltä osin kuin käsittely "
                            "perustuu suostumukseen tai sopimukseen."),
            "objection": "Oikeus vastustaa käsittelyä ja kieltää suoramarkkinointi (21 artikla).",
            "objectable": "Rekisteröity voi milloin tahansa kieltää seuraavat käsittelyt; kielto merkitään rekisteriin:",
            "withdraw": ("Suostumukseen perustuvan käsittelyn suostumuksen voi peruuttaa milloin tahansa; "
                         "peruutus ei vaikuta aiemman käsittelyn lainmukaisuuteen."),
            "guardian": ("Alle {age}-vuotiaan lapsen puolesta suostumuksen antaa huoltaja (tietosuojalaki 1050/2018, "
                         "5 §). Alle 18-vuotiaan lapsen oikeuksia käyttää huoltaja (laki lapsen huollosta ja "
                         "tapaamisoikeudesta 361/1983); 15 vuotta täyttänyt voi käyttää niitä myös itse. Lapsi voi "
                         "aina itse peruuttaa suostumuksen tai vastustaa käsittelyä."),
            "deadline": ("Pyyntöön vastataan ilman aiheetonta viivytystä; vastausaika on enintään {response} "
                         "pyynnön vastaanottamisesta. Vastausaikaa voidaan pidentää pyyntöjen monimutkaisuuden tai "
                         "määrän vuoksi; lisäaika on enintään {extension}. Pidennyksestä ja sen syystä ilmoitetaan "
                         "kuukauden kuluessa pyynnön vastaanottamisesta."),
            "channels": "Pyynnön voi esittää: {channels}.",
            "any_channel": "Pyynnön voi esittää myös muulla tavalla; se käsitellään samoin.",
            "identity": ("Pyynnön esittäjän henkilöllisyys tarkistetaan ennen kuin tietoja luovutetaan, esimerkiksi "
                         "vahvistuslinkillä rekisterissä jo olevaan sähköpostiosoitteeseen tai puhelinnumeroon tai "
                         "vahvalla sähköisellä tunnistautumisella; allekirjoitusta ei vaadita."),
            "complaint": ("Rekisteröidyllä on oikeus tehdä valitus valvontaviranomaiselle, Suomessa "
                          "tietosuojavaltuutetun toimistolle (tietosuoja.fi), jos hän katsoo, että häntä "
                          "koskevien henkilötietojen käsittelyssä rikotaan tietosuoja-asetusta."),
        },
        "request_channels": {"letter": "kirjeellä", "in_person": "henkilökohtaisesti rekisterinpitäjän luona",
                             "email": "sähköpostilla", "web_form": "verkkolomakkeella",
                             "api": "sähköisen rajapinnan kautta", "phone": "puhelimitse",
                             "other": "muulla tavalla"},
        "no_cookies": "Palvelussa ei käytetä evästeitä.",
    },
    "en": {
        "title": "Privacy statement",
        "law": ("This privacy statement informs data subjects as required by Articles 13 and 14 of the EU "
                "General Data Protection Regulation (EU) 2016/679, supplemented by the Finnish Data Protection "
                "Act (1050/2018)."),
        "updated": "Last updated {date} (version {version}).",
        "headings": {
            "controller": "Controller",
            "contact": "Contact for matters concerning the register",
            "register": "Name of the register",
            "purposes": "Purposes and legal bases of the processing",
            "categories": "Data subjects and the personal data processed",
            "sources": "Regular sources of data",
            "disclosures": "Disclosures and processors",
            "transfers": "Transfers outside the EU/EEA",
            "security": "How the register is protected",
            "retention": "How long data is kept",
            "rights": "Your rights",
            "cookies": "Cookies",
        },
        "business_id": "Business ID",
        "also_known_as": "Trade names",
        "phone": "Phone",
        "email": "Email",
        "website": "Website",
        "bases": {
            "consent": "consent (GDPR Art. 6(1)(a))",
            "contract": "contract or customer relationship (Art. 6(1)(b))",
            "legitimate_interest": "the controller's legitimate interest (Art. 6(1)(f))",
            "legal_obligation": "legal obligation (Art. 6(1)(c))",
        },
        "basis": "Legal basis",
        "channels_label": "Channels",
        "channels": {"email": "email", "sms": "text message", "phone": "phone", "post": "letter"},
        "objectable": "You may object to this processing at any time.",
        "withdrawable": "You may withdraw the consent at any time, as easily as you gave it (GDPR Art. 7(3)).",
        "marketing": {
            "consent": ("Persons receive marketing by {channels} only with their prior consent (Act on Electronic "
                        "Communications Services 917/2014, section 200)."),
            "soft_opt_in": ("A customer whose contact details were obtained in connection with a sale may receive "
                            "marketing of our own similar products and services by {channels} without a separate "
                            "consent, having been offered a chance to refuse when the details were collected and "
                            "in every message (section 200(2))."),
            "unless_refused": "Marketing by {channels} is allowed until you refuse it (section 200(3)).",
            "business": "Companies' and organisations' addresses receive marketing until they refuse it (section 201).",
            "children": "Children under {age} receive marketing only with their guardian's consent.",
            "refuse": ("You can refuse marketing with one click from the link in every message or by telling the "
                       "controller; the refusal is absolute (GDPR Art. 21(2)-(3), 917/2014 section 202)."),
        },
        "retired": "This processing has ended; no new consents are collected.",
        "data_subjects": "Groups of data subjects",
        "no_disclosures": "Data is not disclosed to or processed by anyone outside the controller.",
        "roles": {"processor": "processor", "recipient": "recipient", "internal": "internal use by the controller"},
        "location": "location",
        "no_transfers": "Data is not transferred outside the EU/EEA.",
        "safeguards": {
            "adequacy_decision": "an adequacy decision of the European Commission (Art. 45)",
            "eu_us_data_privacy_framework": ("the EU–US Data Privacy Framework (Commission adequacy decision "
                                             "of 10 July 2023)"),
            "standard_contractual_clauses": "standard contractual clauses adopted by the European Commission (Art. 46)",
            "binding_corporate_rules": "binding corporate rules (Art. 47)",
            "art49_derogation": "a derogation for specific situations (Art. 49)",
        },
        "safeguard": "safeguard",
        "statute": "basis",
        "minimum": "at least",
        "units": {"years": ("year", "years"), "months": ("month", "months"), "weeks": ("week", "weeks"),
                  "days": ("day", "days"), "hours": ("hour", "hours")},
        "rights": {
            "access": ("Right of access (Art. 15): you may find out whether data about you is processed and "
                       "get a copy of it."),
            "fee": ("The first copy of your data is always free of charge. A reasonable fee based on administrative "
                    "costs may be charged only for further copies you ask for (Art. 15(3)) or for a manifestly "
                    "unfounded or excessive request (Art. 12(5)); the reasons are then recorded and you are told of "
                    "your right to lodge a complaint. Repeating a request is not in itself a reason for a fee."),
            "rectification": ("Right to rectification (Art. 16): inaccurate or incomplete data is corrected on "
                              "request. Say which data is wrong and what is correct."),
            "erasure": ("Right to erasure (Art. 17): data is erased on request unless the law requires it to be "
                        "kept (for example the Accounting Act)."),
            "restriction": "Right to restriction of processing (Art. 18).",
            "portability": ("Right to data portability (Art. 20) for data processed on the basis of consent or "
                            "contract."),
            "objection": "Right to object to processing and to direct marketing (Art. 21).",
            "objectable": "You may object at any time to the following processing; the objection is recorded:",
            "withdraw": ("Where processing is based on consent you may withdraw it at any time; this does not "
                         "affect the lawfulness of earlier processing."),
            "guardian": ("For a child under {age}, a guardian gives consent (Data Protection Act 1050/2018, section "
                         "5). A guardian exercises the rights of a child under 18 (Child Custody Act 361/1983); from "
                         "15 a child may also exercise them themselves. A child may always withdraw a consent or "
                         "object themselves."),
            "deadline": ("A request is answered within {response} of its receipt. The time may be extended by at "
                         "most {extension} where requests are complex or numerous; you are told of an extension "
                         "and its reason within one month."),
            "channels": "A request may be made {channels}.",
            "any_channel": "A request made in any other way is handled the same.",
            "identity": ("The identity of the person making a request is verified before any data is disclosed, for "
                         "example by a confirmation link sent to an email address or phone number already in the "
                         "register, or by strong electronic identification; no signature is required."),
            "complaint": ("You have the right to lodge a complaint with a supervisory authority, in Finland the "
                          "Office of the Data Protection Ombudsman (tietosuoja.fi), if you consider that the "
                          "processing of your personal data infringes the GDPR."),
        },
        "request_channels": {"letter": "by letter", "in_person": "in person at the controller's premises",
                             "email": "by email", "web_form": "through the web form",
                             "api": "through the electronic interface", "phone": "by phone",
                             "other": "in another way"},
        "no_cookies": "The service uses no cookies.",
    },
}
