"""A believable Polish retailer for the demo: people, products and their overlaps across channels.

Deterministic (a fixed seed), so the demo tells the same story every time and its test can check
the summary's counts against the store. The overlaps are the point: the same person appears in the
shop with an upper-case email, at the store POS with a locally written phone number and a loyalty
card, and in the CRM with the international phone — and must end up as one golden record.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

FIRST = [
    ("Anna", "f"),
    ("Maria", "f"),
    ("Katarzyna", "f"),
    ("Małgorzata", "f"),
    ("Agnieszka", "f"),
    ("Barbara", "f"),
    ("Ewa", "f"),
    ("Zofia", "f"),
    ("Joanna", "f"),
    ("Magdalena", "f"),
    ("Aleksandra", "f"),
    ("Natalia", "f"),
    ("Julia", "f"),
    ("Zuzanna", "f"),
    ("Łucja", "f"),
    ("Piotr", "m"),
    ("Krzysztof", "m"),
    ("Andrzej", "m"),
    ("Tomasz", "m"),
    ("Paweł", "m"),
    ("Michał", "m"),
    ("Marcin", "m"),
    ("Jakub", "m"),
    ("Grzegorz", "m"),
    ("Łukasz", "m"),
    ("Mateusz", "m"),
    ("Wojciech", "m"),
    ("Bartłomiej", "m"),
    ("Szymon", "m"),
    ("Jędrzej", "m"),
]
LAST = [
    ("Nowak", "Nowak"),
    ("Kowalski", "Kowalska"),
    ("Wiśniewski", "Wiśniewska"),
    ("Wójcik", "Wójcik"),
    ("Kowalczyk", "Kowalczyk"),
    ("Kamiński", "Kamińska"),
    ("Lewandowski", "Lewandowska"),
    ("Zieliński", "Zielińska"),
    ("Szymański", "Szymańska"),
    ("Woźniak", "Woźniak"),
    ("Dąbrowski", "Dąbrowska"),
    ("Kozłowski", "Kozłowska"),
    ("Jankowski", "Jankowska"),
    ("Mazur", "Mazur"),
    ("Krawczyk", "Krawczyk"),
    ("Piotrowski", "Piotrowska"),
    ("Grabowski", "Grabowska"),
    ("Pawłowski", "Pawłowska"),
    ("Michalski", "Michalska"),
    ("Król", "Król"),
    ("Wieczorek", "Wieczorek"),
    ("Jabłoński", "Jabłońska"),
    ("Wróbel", "Wróbel"),
    ("Nowakowski", "Nowakowska"),
    ("Majewski", "Majewska"),
]
CITIES = [
    ("Warszawa", "00-", "WAW"),
    ("Kraków", "30-", "KRA"),
    ("Łódź", "90-", "LOD"),
    ("Wrocław", "50-", "WRO"),
    ("Poznań", "60-", "POZ"),
    ("Gdańsk", "80-", "GDA"),
    ("Szczecin", "70-", "SZC"),
    ("Lublin", "20-", "LUB"),
    ("Katowice", "40-", "KAT"),
    ("Białystok", "15-", "BIA"),
]
STREETS = [
    "Marszałkowska",
    "Długa",
    "Piotrkowska",
    "Świętojańska",
    "Floriańska",
    "Mickiewicza",
    "Słowackiego",
    "Kościuszki",
    "Lipowa",
    "Polna",
    "Leśna",
    "Ogrodowa",
    "Kwiatowa",
    "Żeromskiego",
    "Sienkiewicza",
]
DOMAINS = ["gmail.com", "wp.pl", "onet.pl", "o2.pl", "interia.pl", "example.pl"]
PRODUCTS = [
    ("KUB-0001", "Kubek ceramiczny „Bałtyk” 350 ml", "39.90"),
    ("KOC-0002", "Koc wełniany w kratę 150×200", "249.00"),
    ("SWI-0003", "Świeca sojowa — las po deszczu", "59.00"),
    ("POS-0004", "Poszewka lniana 50×50, oliwkowa", "79.00"),
    ("DZB-0005", "Dzbanek szklany 1,2 l", "89.90"),
    ("TAL-0006", "Talerz kamionkowy 27 cm", "54.00"),
    ("FAR-0007", "Fartuch kuchenny z lnu", "119.00"),
    ("MIS-0008", "Miska na sałatkę z drewna akacjowego", "99.00"),
    ("RĘC-0009", "Ręcznik bawełniany 70×140, szałwia", "69.00"),
    ("LAM-0010", "Lampka nocna z abażurem z papieru ryżowego", "189.00"),
    ("ZES-0011", "Zestaw przypraw z Zakopanego", "44.50"),
    ("HER-0012", "Herbata zimowa z malinami, 100 g", "29.90"),
]


@dataclass
class Person:
    """One real person; ``in_shop`` / ``in_pos`` / ``in_crm`` say where they are already known."""

    key: int
    first_name: str
    last_name: str
    email: str
    phone_local: str
    """As a person writes it at a till: ``600 123 456``."""
    city: str
    postal_code: str
    street: str
    locker: str
    """The parcel locker the person picks up from (an InPost point name such as ``KRA04M``)."""
    loyalty_id: str | None = None
    in_shop: bool = False
    in_pos: bool = False
    in_crm: bool = False
    marketing_opt_in: bool = False

    @property
    def phone_e164(self) -> str:
        return "+48" + self.phone_local.replace(" ", "")

    @property
    def email_as_typed_in_shop(self) -> str:
        """Shops keep what people type: some type their email in capitals."""
        return self.email.upper() if self.key % 4 == 0 else self.email

    @property
    def channels(self) -> int:
        return sum((self.in_shop, self.in_pos, self.in_crm))


@dataclass
class Product:
    sku: str
    name: str
    price: Decimal
    stock: int


@dataclass
class Retailer:
    people: list[Person]
    products: list[Product]
    lockers: list[str] = field(default_factory=list)

    def known_in(self, channel: str) -> list[Person]:
        return [p for p in self.people if getattr(p, f"in_{channel}")]

    @property
    def cross_channel(self) -> list[Person]:
        """People known in more than one channel: the ones the hub must join into one record."""
        return [p for p in self.people if p.channels > 1]


def _ascii(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L")) if c.isascii())


def _mobile(rnd: random.Random) -> str:
    """A Polish mobile number as people write it: ``601 234 567`` (a mobile operator's prefix)."""
    prefix = rnd.choice(["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"])
    return f"{prefix}{rnd.randint(0, 9)} {rnd.randint(0, 999):03d} {rnd.randint(0, 999):03d}"


def retailer(people: int = 300, seed: int = 2026) -> Retailer:
    """``people`` customers over the shop, the POS and the CRM, with overlaps, and the product range."""
    rnd = random.Random(seed)
    lockers = [f"{code}{n:02d}M" for _, _, code in CITIES for n in range(1, 6)]
    out: list[Person] = []
    used_emails: set[str] = set()
    for key in range(people):
        first, sex = rnd.choice(FIRST)
        male, female = rnd.choice(LAST)
        last = male if sex == "m" else female
        city, zip_prefix, code = rnd.choice(CITIES)
        local = f"{_ascii(first).lower()}.{_ascii(last).lower()}"
        email = f"{local}@{rnd.choice(DOMAINS)}"
        n = 1
        while email in used_emails:
            n += 1
            email = f"{local}{n}@{email.split('@')[1]}"
        used_emails.add(email)
        person = Person(
            key=key,
            first_name=first,
            last_name=last,
            email=email,
            phone_local=_mobile(rnd),
            city=city,
            postal_code=f"{zip_prefix}{rnd.randint(1, 999):03d}",
            street=f"ul. {rnd.choice(STREETS)} {rnd.randint(1, 120)}",
            locker=f"{code}{rnd.randint(1, 5):02d}M",
            marketing_opt_in=rnd.random() < 0.6,
        )
        # where the person is known: about half shop only, a fifth POS only, the rest in two or three
        roll = rnd.random()
        person.in_shop = roll < 0.75
        person.in_pos = roll > 0.55
        person.in_crm = rnd.random() < 0.35
        if person.in_pos:
            person.loyalty_id = f"KL-{100000 + key}"
        out.append(person)
    products = [Product(sku, name, Decimal(price), rnd.randint(5, 80)) for sku, name, price in PRODUCTS]
    return Retailer(out, products, lockers)
